/**
 * `deno task cluster` (scripts/cluster.ts): 1 PD + 3 stores come up and say where; a write
 * through PD lands; SIGINT stops every process and exits 0; started again on the same
 * directory, the write is still there.
 */
import assert from "node:assert/strict";
import { ctl } from "./ctl.ts";

const SCRIPT = new URL("../../scripts/cluster.ts", import.meta.url).pathname;
const READY_MS = 120_000;
const STOP_MS = 60_000;

/** A base port with `count` free consecutive loopback ports after it (below the ephemeral range). */
function freePorts(count: number): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 21_000 + Math.floor(Math.random() * 9_000);
    const held: Deno.Listener[] = [];
    try {
      for (let i = 0; i < count; i++) {
        held.push(Deno.listen({ hostname: "127.0.0.1", port: base + i }));
      }
      return base;
    } catch {
      // one is taken: try another base
    } finally {
      for (const listener of held) listener.close();
    }
  }
  throw new Error(`no ${count} free consecutive ports`);
}

async function startPlayground(
  dir: string,
  base: number,
  ports: { stores: number; status: number } = { stores: base + 3, status: base + 6 },
  extra: string[] = [],
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      SCRIPT,
      "--stores",
      "3",
      "--dir",
      dir,
      "--pd-port",
      String(base),
      "--store-port",
      String(ports.stores),
      "--status-port",
      String(ports.status),
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + READY_MS;
  while (!/basalt-cluster ready/.test(seen)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      reader.read(),
      new Promise<{ done: true; value: undefined }>((resolve) => {
        timer = setTimeout(() => resolve({ done: true, value: undefined }), deadline - Date.now());
      }),
    ]);
    clearTimeout(timer);
    if (next.done) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      throw new Error(`the playground did not get ready:\n${seen}`);
    }
    seen += next.value;
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      seen += value;
    }
  })();
  const stderr = new Response(child.stderr).text();
  return {
    output: () => seen,
    async interrupt(): Promise<number> {
      child.kill("SIGINT");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        child.status.then((status) => status.code),
        new Promise<number>((resolve) => {
          timer = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch { /* exited */ }
            resolve(-1);
          }, STOP_MS);
        }),
      ]);
      clearTimeout(timer);
      await rest;
      await stderr;
      return code;
    },
  };
}

Deno.test({
  name:
    "deno task cluster: 1 PD + 3 stores come up, SIGINT stops all of them, a restart keeps the data",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "basalt_playground_" });
    const base = freePorts(9);
    const pd = `127.0.0.1:${base}`;
    let failed = true;
    try {
      const first = await startPlayground(dir, base);
      assert.match(first.output(), new RegExp(`pd ${pd}, 3 stores at 127\\.0\\.0\\.1:${base + 3}`));
      const put = await ctl(["--pd", pd, "raw", "put", "playground", "kept"]);
      assert.equal(put.code, 0, put.stderr);
      assert.equal(await first.interrupt(), 0, "SIGINT ends the playground with status 0");
      assert.match(first.output(), /basalt-cluster: stopped/);
      // Every process is gone: the ports are free again.
      assert.equal(freePortsAt(base, 9), true, "the playground's ports are free after it stopped");
      const second = await startPlayground(dir, base);
      const get = await ctl(["--pd", pd, "raw", "get", "playground"]);
      assert.equal(get.stdout.trim(), "kept", get.stderr);
      assert.equal(await second.interrupt(), 0);
      failed = false;
    } finally {
      if (failed) console.error(`playground test: kept ${dir}`);
      else await Deno.remove(dir, { recursive: true });
    }
  },
});

function freePortsAt(base: number, count: number): boolean {
  const held: Deno.Listener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      held.push(Deno.listen({ hostname: "127.0.0.1", port: base + i }));
    }
    return true;
  } catch {
    return false;
  } finally {
    for (const listener of held) listener.close();
  }
}

Deno.test({
  name:
    "deno task cluster --pd 3: three PD members replicate, the stores and ctl know all three, SIGINT stops everything",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "basalt_playground_pd3_" });
    // PD members on base, base + 10, base + 20 (client, peer, status each); stores after.
    const base = freePorts(40);
    const pds = [0, 10, 20].map((offset) => `127.0.0.1:${base + offset}`).join(",");
    let failed = true;
    try {
      const playground = await startPlayground(dir, base, {
        stores: base + 30,
        status: base + 35,
      }, ["--pd", "3"]);
      assert.match(playground.output(), new RegExp(`pd ${pds.replaceAll(".", "\\.")}, 3 stores`));
      const put = await ctl(["--pd", pds, "raw", "put", "replicated-pd", "yes"]);
      assert.equal(put.code, 0, put.stderr);
      const members = await ctl(["--pd", pds, "member", "list"]);
      assert.equal(members.code, 0, members.stderr);
      assert.equal(members.stdout.match(/^pd[123] /gm)?.length, 3, members.stdout);
      assert.equal(await playground.interrupt(), 0, "SIGINT ends the playground with status 0");
      assert.equal(freePortsAt(base, 40), true, "the playground's ports are free after it stopped");
      failed = false;
    } finally {
      if (failed) console.error(`playground test: kept ${dir}`);
      else await Deno.remove(dir, { recursive: true });
    }
  },
});
