/**
 * The Redis gateway over a real cluster (PD + 3 stores, tests/e2e/cluster.ts): the same
 * command-by-command suite as standalone, through node-redis and redis-cli, and WATCH across
 * two gateways of the cluster.
 */
import assert from "node:assert/strict";
import { TxnKV } from "../../src/client/mod.ts";
import { RedisGateway } from "../../src/gateway/redis/mod.ts";
import { npmClient } from "./redis_client.ts";
import { clusterGateway, redisCli } from "./redis_lib.ts";
import { runSteps, SUITES } from "./redis_suite.ts";

Deno.test("Redis gateway (3-store cluster): every command, redis-cli, WATCH across gateways", async (t) => {
  const fixture = await clusterGateway();
  const { send, close } = await npmClient(fixture.port);
  try {
    for (const [name, steps] of Object.entries(SUITES)) {
      await t.step(`${name}, node-redis`, async () => {
        await send(["FLUSHALL"]);
        await runSteps(send, steps);
      });
    }
    await t.step("redis-cli: a pipe of inline commands", async () => {
      const out = await redisCli(
        fixture.port,
        [],
        "SET p 1\nINCR p\nHSET h f v\nHGETALL h\nDEL p h\nGET p\n",
      );
      assert.equal(out, "OK\n2\n1\nf\nv\n2\n\n");
    });
    await t.step("a key changed through a second gateway aborts the first's EXEC", async () => {
      const kv = await TxnKV.connect({ pd: [fixture.storeAddr] });
      const other = await RedisGateway.start({
        hostname: "127.0.0.1",
        port: 0,
        kv,
        ownsClient: true,
        reclaimIntervalMs: 0,
      });
      const c = await npmClient(other.port);
      try {
        await send(["SET", "w", "1"]);
        await send(["WATCH", "w"]);
        assert.equal(await c.send(["SET", "w", "2"]), "OK");
        await send(["MULTI"]);
        await send(["SET", "w", "3"]);
        assert.equal(await send(["EXEC"]), null);
        assert.equal(await send(["GET", "w"]), "2");
      } finally {
        await c.close();
        await other.close();
      }
    });
  } finally {
    await close();
    await fixture.stop();
  }
});
