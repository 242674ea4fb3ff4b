/** Process lifecycle: restarts keep data, SIGKILL loses no acknowledged write, bad set-ups are refused. */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
const putCodecs = { request: kvrpcpb.RawPutRequest, response: kvrpcpb.RawPutResponse };
const scanCodecs = { request: kvrpcpb.RawScanRequest, response: kvrpcpb.RawScanResponse };

function put(client: TikvClient, key: string): Promise<kvrpcpb.RawPutResponse> {
  return client.call("RawPut", putCodecs, { context, key: utf8(key), value: utf8(`value-${key}`) });
}

async function scanAll(addr: string): Promise<Map<string, string>> {
  const client = new TikvClient(addr);
  try {
    const response = await client.call<kvrpcpb.RawScanRequest.$Properties, kvrpcpb.RawScanResponse>(
      "RawScan",
      scanCodecs,
      { context, limit: 100_000 },
    );
    return new Map(response.kvs.map((kv) => [fromUtf8(kv.key!), fromUtf8(kv.value!)]));
  } finally {
    client.close();
  }
}

Deno.test({
  name:
    "e2e: SIGTERM then restart finds every write; SIGKILL under load loses no acknowledged write",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      let client = new TikvClient(server.grpcAddr);
      for (let i = 0; i < 50; i++) await put(client, `calm-${i}`);
      client.close();
      assert.equal(await server.stop(), 0);
      await server.restart();
      assert.equal((await scanAll(server.grpcAddr)).size, 50);

      // A write load of 4 concurrent writers, killed mid-flight.
      client = new TikvClient(server.grpcAddr);
      const acknowledged: string[] = [];
      let running = true;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; running && i < 10_000; i++) {
          const key = `load-${w}-${i}`;
          try {
            await put(client, key);
            acknowledged.push(key);
          } catch {
            return;
          }
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 700));
      await server.kill();
      running = false;
      await Promise.all(writers);
      client.close();
      assert.ok(acknowledged.length > 0, "some writes were acknowledged before the kill");
      await server.restart();
      const stored = await scanAll(server.grpcAddr);
      const lost = acknowledged.filter((key) => stored.get(key) !== `value-${key}`);
      assert.deepEqual(
        lost,
        [],
        `${lost.length} of ${acknowledged.length} acknowledged writes lost`,
      );
    }),
});

Deno.test({
  name: "e2e: SIGTERM drains in-flight requests: a delayed BatchCommands answer still arrives",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      const stream = client.batchCommands();
      try {
        const answer = stream.send({
          requests: [{ Empty: { testId: 7n, delayTime: 400n } }],
          requestIds: [1n],
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        const exit = server.stop();
        assert.equal((await answer).responses[0]?.Empty?.testId, 7n);
        assert.equal(await exit, 0);
      } finally {
        stream.close();
        client.close();
      }
    }),
});

async function runMain(args: string[]): Promise<{ code: number; output: string }> {
  const main = new URL("../../src/server/main.ts", import.meta.url).pathname;
  const result = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", main, ...args] })
    .output();
  const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  return { code: result.code, output: text };
}

Deno.test("e2e: --help lists every flag and configuration key", async () => {
  const { code, output } = await runMain(["--help"]);
  assert.equal(code, 0);
  for (
    const flag of ["--addr", "--status-addr", "--data-dir", "--config", "--log-level", "--log-file"]
  ) {
    assert.ok(output.includes(flag), `--help mentions ${flag}`);
  }
  assert.match(output, /\[rocksdb\]/);
});

Deno.test("e2e: an unknown config key, a bad value and a foreign data dir are refused by name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "basalt_e2e_config_" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.toml`,
      '[server]\naddr = "127.0.0.1:0"\nmax-threads = 4\n',
    );
    const unknown = await runMain(["--config", `${dir}/bad.toml`]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.output, /server\.max-threads: unknown key/);
    const badLevel = await runMain(["--log-level", "loud"]);
    assert.match(badLevel.output, /--log-level: expected one of debug, info, warn, error/);
    await Deno.mkdir(`${dir}/foreign`);
    await Deno.writeTextFile(`${dir}/foreign/notes.txt`, "not a store");
    const foreign = await runMain(["--data-dir", `${dir}/foreign`, "--addr", "127.0.0.1:0"]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.output, /not a Basalt data directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
