/**
 * A full disk (issue #9, item 6), on a real filesystem: a 64 MiB tmpfs mounted as the data
 * directory (root only; skipped with the reason printed where mounting is not allowed).
 *
 * The store's writes fill it until less than the reserve size is free; writes then fail with a
 * clear "almost full" error before they reach RocksDB, `/health` answers 503 "cannot write: …",
 * and the log repeats its errors at a bounded rate. Removing the store's reserve file (as its
 * log line suggests) gives the space back, and writes resume without a restart; no
 * acknowledged write is lost, and RocksDB itself never met the full disk.
 *
 * The writes are paced (WRITE_PAUSE_MS): the guard looks every DISK_CHECK_INTERVAL_MS, and a
 * writer that fills more than the reserve between two looks would reach RocksDB's own
 * full-disk path, which Debian's librocksdb 7.8 can end in SIGABRT (see `fenceWrites`).
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { availableBytes } from "../../ffi/disk_space.ts";
import { LOG_REPEAT_MAX_LINES, LOG_REPEAT_WINDOW_MS } from "../../src/constants.ts";
import { RESERVE_FILE_NAME } from "../../src/server/disk_guard.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { startServer, type TestServer, TikvClient } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
const batchPut = { request: kvrpcpb.RawBatchPutRequest, response: kvrpcpb.RawBatchPutResponse };
const batchGet = { request: kvrpcpb.RawBatchGetRequest, response: kvrpcpb.RawBatchGetResponse };

const TMPFS_BYTES = 64 * 1024 * 1024;
/** A small write buffer, so that the reserve (two of them) fits the small disk. */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/** The reserve file the store makes: two write buffers. */
const RESERVE_BYTES = 2 * WRITE_BUFFER_BYTES;
/** What the filler file leaves free besides the reserve, for the store's writes to fill. */
const LEFT_FREE_BYTES = RESERVE_BYTES + 4 * 1024 * 1024;
/** Writes tried while refused: their errors must reach the log at a bounded rate. */
const REFUSED_WRITES = 200;
/** Between two writes: 64 KiB per 20 ms stays far below the reserve per guard look. */
const WRITE_PAUSE_MS = 20;
const KEYS_PER_WRITE = 64;
const VALUE_BYTES = 1024;
/** Writes tried before the disk must have filled: 2× the disk. */
const MAX_WRITES = (2 * TMPFS_BYTES) / (KEYS_PER_WRITE * VALUE_BYTES);
/** RocksDB looks for free space every 5 s; allow a few looks on a loaded machine. */
const RESUME_TIMEOUT_MS = 40_000;
const HEALTH_TIMEOUT_MS = 15_000;

function mountTmpfs(dir: string): string | null {
  const result = new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${TMPFS_BYTES}`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  return result.success ? null : new TextDecoder().decode(result.stderr).trim();
}

function unmount(dir: string): void {
  new Deno.Command("umount", { args: [dir], stdout: "null", stderr: "null" }).outputSync();
}

const valueOf = (key: string) => new Uint8Array(VALUE_BYTES).fill(key.charCodeAt(key.length - 1));

async function health(server: TestServer): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${server.statusAddr}/health`);
  return { status: response.status, body: await response.text() };
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Writes one batch; resolves its keys when acknowledged, or the error text. */
async function write(client: TikvClient, prefix: string): Promise<string[] | string> {
  const keys = Array.from({ length: KEYS_PER_WRITE }, (_, k) => `${prefix}-${k}`);
  try {
    const answer = await client.call<unknown, kvrpcpb.RawBatchPutResponse>(
      "RawBatchPut",
      batchPut,
      {
        context,
        pairs: keys.map((key) => ({ key: utf8(key), value: valueOf(key) })),
      },
    );
    return answer.error !== "" ? answer.error : keys;
  } catch (error) {
    return (error as Error).message;
  }
}

async function lost(client: TikvClient, keys: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (let at = 0; at < keys.length; at += 4096) {
    const chunk = keys.slice(at, at + 4096);
    const answer = await client.call<unknown, kvrpcpb.RawBatchGetResponse>(
      "RawBatchGet",
      batchGet,
      {
        context,
        keys: chunk.map(utf8),
      },
    );
    const found = new Map(answer.pairs.map((pair) => [fromUtf8(pair.key!), pair.value!]));
    for (const key of chunk) {
      const value = found.get(key);
      if (value === undefined || value[0] !== valueOf(key)[0]) missing.push(key);
    }
  }
  return missing;
}

Deno.test({
  name: "e2e: a full disk refuses writes and turns /health 503; removing the reserve file " +
    "resumes writes without a restart and loses no acknowledged write",
  ...E2E,
  ignore: Deno.build.os !== "linux",
  fn: async (t) => {
    const parent = await Deno.makeTempDir({ prefix: "basalt_e2e_disk_full_" });
    const dataDir = `${parent}/data`;
    await Deno.mkdir(dataDir);
    const refusal = mountTmpfs(dataDir);
    if (refusal !== null) {
      console.log(`skipped: cannot mount a tmpfs here (${refusal})`);
      await Deno.remove(parent, { recursive: true });
      return;
    }
    const config = `${parent}/basalt.toml`;
    await Deno.writeTextFile(config, `[rocksdb]\nwrite-buffer-size = "4MB"\n`);
    let server: TestServer | null = null;
    let failed = true;
    try {
      server = await startServer({ dataDir, args: ["--config", config] });
      const reservePath = `${dataDir}/${RESERVE_FILE_NAME}`;
      assert.equal(Deno.statSync(reservePath).size, RESERVE_BYTES, "reserve made");
      assert.deepEqual(await health(server), { status: 200, body: "ok\n" });
      const client = new TikvClient(server.grpcAddr);
      const acknowledged: string[] = [];
      try {
        await t.step("writes fail with a clear error once the disk is almost full", async () => {
          const filler = (availableBytes(dataDir) ?? 0) - LEFT_FREE_BYTES;
          assert.ok(filler > 0, "the tmpfs has room for the filler");
          await Deno.writeFile(`${dataDir}/filler`, new Uint8Array(filler));
          let failure = "";
          for (let i = 0; i < MAX_WRITES && failure === ""; i++) {
            const result = await write(client, `fill-${i}`);
            if (typeof result === "string") failure = result;
            else acknowledged.push(...result);
            await new Promise((resolve) => setTimeout(resolve, WRITE_PAUSE_MS));
          }
          assert.ok(acknowledged.length > 0, "writes succeeded before the disk filled");
          assert.match(failure, /the disk of .* is almost full, writes are refused/);
          // A client that keeps trying: every attempt fails, and is an error the store logs.
          for (let i = 0; i < REFUSED_WRITES; i++) {
            const again = await write(client, `refused-${i}`);
            assert.match(String(again), /almost full/, "writes stay refused");
          }
          const free = availableBytes(dataDir)!;
          assert.ok(free > 0 && free < RESERVE_BYTES, `${free} bytes free: RocksDB had room`);
        });

        await t.step("/health answers 503 and says why", async () => {
          const answer = await until("/health turns 503", HEALTH_TIMEOUT_MS, async () => {
            const answer = await health(server!);
            return answer.status === 503 ? answer : null;
          });
          assert.match(answer.body, /^cannot write: disk almost full: \d+ bytes free, less than/);
        });

        await t.step("removing the reserve file lets writes resume without a restart", async () => {
          await Deno.remove(reservePath);
          const resumed = await until("a write succeeds again", RESUME_TIMEOUT_MS, async () => {
            const result = await write(client, `resumed-${Date.now()}`);
            return typeof result === "string" ? null : result;
          });
          acknowledged.push(...resumed);
          await until("/health turns 200", HEALTH_TIMEOUT_MS, async () => {
            return (await health(server!)).status === 200 ? true : null;
          });
          const missing = await lost(client, acknowledged);
          assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged writes lost`);
        });
      } finally {
        client.close();
      }

      await t.step("repeated errors were logged at a bounded rate", async () => {
        const log = await Deno.readTextFile(`${dataDir}.server.log`);
        const lines = log.split("\n");
        const first = lines.findIndex((line) => /refused|almost full/.test(line));
        const last = lines.findLastIndex((line) => /refused|almost full/.test(line));
        const spanMs = Date.parse(lines[last]!.slice(0, 24)) -
          Date.parse(lines[first]!.slice(0, 24));
        const windows = Math.floor(spanMs / LOG_REPEAT_WINDOW_MS) + 1;
        const perMessage = new Map<string, number>();
        for (const line of lines) {
          const message = / (WARN|ERROR) ([^=]+?)(?: \w+=|$)/.exec(line);
          if (message) perMessage.set(message[2]!, (perMessage.get(message[2]!) ?? 0) + 1);
        }
        console.log(`warnings and errors over ${spanMs} ms:`, Object.fromEntries(perMessage));
        const refused = perMessage.get("request failed") ?? 0;
        assert.ok(refused < REFUSED_WRITES, `${refused} of ${REFUSED_WRITES} failures logged`);
        assert.ok((perMessage.get("writes refused") ?? 0) > 0, "the guard logged the refusal");
        assert.doesNotMatch(log, /No space left on device/, "RocksDB never met the full disk");
        for (const [message, count] of perMessage) {
          // Two partial windows at the ends: at most one window's worth more than the span.
          const bound = LOG_REPEAT_MAX_LINES * (windows + 1);
          assert.ok(count <= bound, `"${message}" logged ${count} times, bound ${bound}`);
        }
      });

      assert.equal(await server.stop(), 0, "the store stops cleanly after the disk trouble");
      failed = false;
    } finally {
      if (server !== null) {
        try {
          await server.stop();
        } catch { /* already stopped */ }
      }
      unmount(dataDir);
      if (failed) console.error(`e2e: kept logs of the failed test in ${parent}`);
      else await Deno.remove(parent, { recursive: true });
    }
  },
});
