/**
 * MULTI/EXEC/WATCH and expiry of the Redis gateway over a real standalone store: EXEC is one
 * Basalt transaction; a WATCHed key changed by another client makes EXEC answer nil; expiry is
 * exact for readers and the reclaimer deletes expired keys in the background; the gateway also
 * runs inside the store (`serve --redis-addr`).
 */
import assert from "node:assert/strict";
import { freeLoopbackPort, startServer } from "../e2e/lib.ts";
import { npmClient } from "./redis_client.ts";
import { redisCli, standaloneGateway } from "./redis_lib.ts";

Deno.test("Redis gateway: MULTI/EXEC/DISCARD/WATCH as Redis 7", async (t) => {
  const fixture = await standaloneGateway();
  const a = await npmClient(fixture.port);
  const b = await npmClient(fixture.port);
  try {
    await t.step("EXEC runs the queue and answers every reply; errors stay replies", async () => {
      assert.equal(await a.send(["MULTI"]), "OK");
      for (
        const command of [["SET", "x", "1"], ["INCR", "x"], ["HSET", "x", "f", "v"], ["GET", "x"]]
      ) {
        assert.equal(await a.send(command), "QUEUED");
      }
      const out = await a.send(["EXEC"]) as unknown[];
      assert.equal(out[0], "OK");
      assert.equal(out[1], 2);
      assert.match(String((out[2] as Error).message), /^WRONGTYPE/);
      assert.equal(out[3], "2");
    });
    await t.step("EXEC without MULTI, DISCARD, nested MULTI, EXECABORT", async () => {
      const out = await redisCli(
        fixture.port,
        [],
        "EXEC\nDISCARD\nMULTI\nMULTI\nSET y 1\nDISCARD\nGET y\nMULTI\nNOSUCH\nSET y 2\nEXEC\nGET y\n",
      );
      // redis-cli prints an empty line after each error.
      assert.equal(
        out,
        "ERR EXEC without MULTI\n\nERR DISCARD without MULTI\n\nOK\nERR MULTI calls can not be nested\n\n" +
          "QUEUED\nOK\n\nOK\nERR unknown command 'NOSUCH', with args beginning with: \n\nQUEUED\n" +
          "EXECABORT Transaction discarded because of previous errors.\n\n\n",
      );
    });
    await t.step(
      "a WATCHed key set by another client aborts EXEC (nil), not otherwise",
      async () => {
        await a.send(["SET", "w", "0"]);
        assert.equal(await a.send(["WATCH", "w"]), "OK");
        assert.equal(await b.send(["SET", "w", "changed"]), "OK"); // the other client
        assert.equal(await a.send(["MULTI"]), "OK");
        assert.equal(await a.send(["SET", "w", "mine"]), "QUEUED");
        assert.equal(await a.send(["EXEC"]), null);
        assert.equal(await a.send(["GET", "w"]), "changed");
        // Unchanged: EXEC runs; after EXEC nothing is watched any more.
        await a.send(["WATCH", "w"]);
        await a.send(["MULTI"]);
        await a.send(["SET", "w", "mine"]);
        assert.deepEqual(await a.send(["EXEC"]), ["OK"]);
        await b.send(["SET", "w", "other"]);
        await a.send(["MULTI"]);
        await a.send(["INCR", "n"]);
        assert.deepEqual(await a.send(["EXEC"]), [1]);
        // Set to the same value still counts as a change (Redis: any write touches the key).
        await a.send(["WATCH", "w"]);
        await b.send(["SET", "w", "other"]);
        await a.send(["MULTI"]);
        await a.send(["INCR", "n"]);
        assert.equal(await a.send(["EXEC"]), null);
        // UNWATCH forgets.
        await a.send(["WATCH", "w"]);
        await b.send(["DEL", "w"]);
        await a.send(["UNWATCH"]);
        await a.send(["MULTI"]);
        await a.send(["INCR", "n"]);
        assert.deepEqual(await a.send(["EXEC"]), [2]);
        assert.deepEqual(await a.send(["MULTI"]), "OK");
        assert.deepEqual(await a.send(["WATCH", "w"]), {
          error: "ERR WATCH inside MULTI is not allowed",
        });
        assert.equal(await a.send(["DISCARD"]), "OK");
      },
    );
    await t.step(
      "a WATCHed key changed through another gateway (MVCC check) aborts EXEC",
      async () => {
        const { TxnKV } = await import("../../src/client/mod.ts");
        const { RedisGateway } = await import("../../src/gateway/redis/mod.ts");
        // The second gateway's own client of the same store: no shared memory with the first.
        const kv = await TxnKV.connect({ host: fixture.storeAddr });
        const other = await RedisGateway.start({
          hostname: "127.0.0.1",
          port: 0,
          kv,
          ownsClient: true,
          reclaimIntervalMs: 0,
        });
        const c = await npmClient(other.port);
        try {
          await a.send(["SET", "g", "1"]);
          await a.send(["WATCH", "g"]);
          assert.equal(await c.send(["SET", "g", "2"]), "OK");
          await a.send(["MULTI"]);
          await a.send(["SET", "g", "3"]);
          assert.equal(await a.send(["EXEC"]), null);
          assert.equal(await a.send(["GET", "g"]), "2");
        } finally {
          await c.close();
          await other.close();
        }
      },
    );
    await t.step(
      "INCR from 20 clients at once loses no count (they share a batch or wait for it)",
      async () => {
        const clients = await Promise.all(
          Array.from({ length: 20 }, () => npmClient(fixture.port)),
        );
        try {
          await Promise.all(clients.map(async (client) => {
            for (let i = 0; i < 25; i++) await client.send(["INCR", "counter"]);
          }));
          assert.equal(await a.send(["GET", "counter"]), "500");
        } finally {
          await Promise.all(clients.map((client) => client.close()));
        }
      },
    );
  } finally {
    await a.close();
    await b.close();
    await fixture.stop();
  }
});

Deno.test("Redis gateway: expiry is exact for readers; the reclaimer deletes expired keys", async () => {
  const fixture = await standaloneGateway();
  const { send, close } = await npmClient(fixture.port);
  try {
    assert.equal(await send(["HSET", "hsoon", "f", "v"]), 1);
    assert.equal(await send(["PEXPIRE", "hsoon", "300"]), 1);
    assert.equal(await send(["SET", "later", "v", "EX", "1000"]), "OK");
    const setAt = Date.now(); // before SET: the key expires at least 300 ms after this
    assert.equal(await send(["SET", "soon", "v", "PX", "300"]), "OK");
    // Before the deadline the key reads back (when the read certainly ran before it).
    const before = await send(["GET", "soon"]);
    if (Date.now() - setAt < 290) assert.equal(before, "v");
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, setAt + 2_000 - Date.now())));
    assert.equal(await send(["GET", "soon"]), null);
    assert.equal(await send(["EXISTS", "soon", "hsoon"]), 0);
    assert.equal(await send(["TTL", "soon"]), -2);
    // Not reclaimed yet: DBSIZE counts them, as Redis's does before its expiry cycle.
    assert.equal(await send(["DBSIZE"]), 3);
    assert.equal(await fixture.gateway.reclaimNow(), 2);
    assert.equal(await send(["DBSIZE"]), 1);
    assert.match(String(await send(["INFO", "stats"])), /expired_keys:2/);
    assert.equal(await fixture.gateway.reclaimNow(), 0);
    assert.equal(await send(["GET", "later"]), "v");
  } finally {
    await close();
    await fixture.stop();
  }
});

Deno.test("serve --redis-addr runs the gateway inside a standalone store", async () => {
  const port = freeLoopbackPort();
  const server = await startServer({ args: ["--redis-addr", `127.0.0.1:${port}`] });
  try {
    assert.equal((await redisCli(port, ["SET", "k", "v"])).trim(), "OK");
    assert.equal((await redisCli(port, ["GET", "k"])).trim(), "v");
    assert.match(await redisCli(port, ["INFO", "server"]), /redis_version:7\.0\.0/);
  } finally {
    await server.stop();
  }
});
