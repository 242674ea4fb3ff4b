/**
 * The GOAWAY guard against denoland/deno#36788: a client that closes its HTTP/2 connection
 * gracefully must not kill the server process (RFC 9113 §6.8: GOAWAY starts a graceful
 * shutdown of the connection, not of the server).
 *
 * Server and clients are child processes, since the failure is an abort inside the runtime.
 * The server runs with `MALLOC_PERTURB_=204`, which fills freed memory: the use-after-free
 * behind the bug then fails on the first GOAWAY instead of after ~110 requests, so these
 * tests are deterministic.
 */
import assert from "node:assert/strict";

const SERVER = new URL("../../tests/fixtures/goaway_server.ts", import.meta.url).pathname;
const CLIENT = new URL("../../tests/fixtures/goaway_client.ts", import.meta.url).pathname;
const READY_TIMEOUT_MS = 20_000;
/** Long enough for a dying server to be reaped, short enough for the test suite. */
const SETTLE_MS = 700;

interface ServerChild {
  port: number;
  status: Promise<Deno.CommandStatus>;
  stderr(): string;
  kill(): Promise<void>;
}

async function startServer(mode: "guard" | "noguard", lingerMs = 30_000): Promise<ServerChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, mode, String(lingerMs)],
    env: { MALLOC_PERTURB_: "204" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stderr += chunk) }),
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!/PORT \d+/.test(stdout)) {
    assert.ok(Date.now() < deadline, `goaway_server did not start: ${stdout} ${stderr}`);
    const { value, done } = await reader.read();
    assert.ok(!done, `goaway_server exited before binding: ${stderr}`);
    stdout += value;
  }
  const stdoutDone = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const status = child.status;
  return {
    port: Number(/PORT (\d+)/.exec(stdout)![1]),
    status,
    stderr: () => stderr,
    kill: async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await Promise.all([status, stderrDone, stdoutDone]);
    },
  };
}

async function runClient(port: number, calls: number, mode: "grpc" | "hold"): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLIENT, String(port), String(calls), mode],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim();
  assert.equal(output.code, 0, `goaway_client failed: ${new TextDecoder().decode(output.stderr)}`);
  return stdout;
}

/** Resolves with the server's exit status, or "running" if it is still up after SETTLE_MS. */
async function serverState(server: ServerChild): Promise<Deno.CommandStatus | "running"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const running = new Promise<"running">((resolve) => {
    timer = setTimeout(() => resolve("running"), SETTLE_MS);
  });
  try {
    return await Promise.race([server.status, running]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("goaway guard: server survives grpc-js clients that close after 250 calls", async () => {
  const server = await startServer("guard");
  try {
    for (let client = 0; client < 2; client++) {
      assert.equal(await runClient(server.port, 250, "grpc"), "CALLS 250");
      assert.equal(await serverState(server), "running", server.stderr());
    }
    // Still serving new connections, not merely alive.
    assert.equal(await runClient(server.port, 10, "grpc"), "CALLS 10");
    assert.equal(await serverState(server), "running", server.stderr());
  } finally {
    await server.kill();
  }
});

Deno.test("goaway guard: a peer that says GOAWAY but keeps a stream open is cut after the linger", async () => {
  const lingerMs = 300;
  const server = await startServer("guard", lingerMs);
  try {
    const reply = await runClient(server.port, 0, "hold");
    const match = /^CLOSED BY SERVER after (\d+) ms$/.exec(reply);
    assert.ok(match, reply);
    assert.ok(Number(match[1]) >= lingerMs - 50, `cut before the linger: ${reply}`);
    assert.equal(await serverState(server), "running", server.stderr());
  } finally {
    await server.kill();
  }
});

Deno.test("goaway guard canary: without it a client's GOAWAY kills the server (deno#36788)", async () => {
  // When this fails, Deno fixed the bug: delete goaway_guard.ts and its call.
  const server = await startServer("noguard");
  try {
    await runClient(server.port, 5, "grpc");
    const state = await serverState(server);
    assert.notEqual(state, "running", "deno#36788 looks fixed: remove the GOAWAY guard");
    assert.ok(state !== "running" && !state.success, server.stderr());
  } finally {
    await server.kill();
  }
});
