/**
 * The Redis gateway over a real standalone store, through node-redis (npm, pinned) and through
 * `redis-cli` (Debian's redis-tools): every command of the issue, replies and errors as
 * Redis 7's (the step tables of `redis_suite.ts`, themselves checked against redis-server).
 */
import assert from "node:assert/strict";
import { freeLoopbackPort } from "../e2e/lib.ts";
import { npmClient } from "./redis_client.ts";
import { RawConnection, redisCli, standaloneGateway } from "./redis_lib.ts";
import { runSteps, type Send, SUITES } from "./redis_suite.ts";

const hasRedisServer = new Deno.Command("which", { args: ["redis-server"], stdout: "null" })
  .outputSync().success;

Deno.test({
  name: "the suite's expectations are Redis 7's: they hold on a real redis-server",
  ignore: !hasRedisServer,
  async fn() {
    const port = freeLoopbackPort();
    const server = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      const { send, close } = await npmClient(port);
      try {
        for (const steps of Object.values(SUITES)) {
          await send(["FLUSHALL"]);
          await runSteps(send, steps);
        }
      } finally {
        await close();
      }
    } finally {
      server.kill("SIGTERM");
      await server.status;
    }
  },
});

Deno.test("Redis gateway (standalone): every command through node-redis and redis-cli", async (t) => {
  const fixture = await standaloneGateway();
  const { send, close } = await npmClient(fixture.port);
  try {
    for (const [name, steps] of Object.entries(SUITES)) {
      await t.step(`${name}, node-redis`, async () => {
        await send(["FLUSHALL"]);
        await runSteps(send, steps);
      });
    }
    await t.step("strings, keys and hashes, redis-cli (one process per command)", async () => {
      const cli: Send = async (args) => {
        const out = (await redisCli(fixture.port, args)).trim();
        return out;
      };
      await cli(["FLUSHALL"]);
      assert.equal(await cli(["SET", "a", "1"]), "OK");
      assert.equal(await cli(["INCRBY", "a", "41"]), "42");
      assert.equal(await cli(["GET", "a"]), "42");
      assert.equal(await cli(["GET", "nokey"]), "");
      assert.equal(await cli(["INCRBYFLOAT", "f", "0.1"]), "0.1");
      assert.equal(await cli(["INCRBYFLOAT", "f", "0.2"]), "0.3");
      assert.equal(await cli(["SET", "e", "v", "PX", "100000"]), "OK");
      assert.match(await cli(["PTTL", "e"]) as string, /^(99\d\d\d|100000)$/);
      assert.equal(await cli(["HSET", "h", "f", "v", "g", "w"]), "2");
      assert.equal(await cli(["HGETALL", "h"]), "f\nv\ng\nw");
      assert.equal(await cli(["TYPE", "h"]), "hash");
      assert.equal(
        await cli(["GET", "h"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value",
      );
      assert.equal(await cli(["DBSIZE"]), "4");
      assert.equal(await cli(["KEYS", "*"]), "a\ne\nf\nh");
      assert.equal(await cli(["EXISTS", "a", "h", "zz"]), "2");
      assert.equal(
        await cli(["NOSUCH"]),
        "ERR unknown command 'NOSUCH', with args beginning with:",
      );
      // Basalt keeps one database (a stated difference): SELECT 1 is refused.
      assert.equal(await cli(["SELECT", "1"]), "ERR DB index is out of range");
    });
    await t.step("redis-cli: a pipe of inline commands, and --scan", async () => {
      const out = await redisCli(fixture.port, [], "SET p 1\nINCR p\nGET p\nDEL p\nGET p\n");
      assert.equal(out, "OK\n2\n2\n1\n\n");
      const scanned = (await redisCli(fixture.port, ["--scan"])).trim().split("\n");
      assert.deepEqual(scanned.sort(), ["a", "e", "f", "h"]);
    });
    await t.step("redis-cli --pipe (mass insert, RESP), then INFO keyspace", async () => {
      let input = "";
      for (let i = 0; i < 500; i++) {
        const key = `bulk:${i}`;
        input += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\nx\r\n`;
      }
      const out = await redisCli(fixture.port, ["--pipe"], input);
      assert.match(out, /errors: 0, replies: 500/);
      assert.match(await redisCli(fixture.port, ["INFO", "keyspace"]), /db0:keys=504,expires=1,/);
    });
  } finally {
    await close();
    await fixture.stop();
  }
});

Deno.test("Redis gateway: protocol — RESP3 by HELLO 3, pipelining, inline, errors close", async (t) => {
  const fixture = await standaloneGateway();
  try {
    await t.step("HELLO 3 switches replies to RESP3 (maps, nulls); HELLO 2 back", async () => {
      const raw = await RawConnection.open(fixture.port);
      await raw.send(
        "HELLO 3\r\nGET nokey\r\nHSET h f v\r\nHGETALL h\r\nHELLO 2\r\nGET nokey\r\nQUIT\r\n",
      );
      const { text, closed } = await raw.receiveUntilClosed();
      raw.close();
      assert.ok(closed, "QUIT closes the connection");
      assert.match(text, /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n/);
      assert.match(text, /\$5\r\nproto\r\n:3\r\n/);
      const afterHello = text.slice(text.indexOf("modules\r\n*0\r\n") + 13);
      assert.ok(
        afterHello.startsWith("_\r\n:1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n*14\r\n"),
        JSON.stringify(afterHello),
      );
      assert.ok(
        text.endsWith(
          ":2\r\n$2\r\nid\r\n" + text.split("id\r\n")[2]!.split("\r\n")[0] +
            "\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n$-1\r\n+OK\r\n",
        ),
        JSON.stringify(text),
      );
      assert.equal(
        await RawConnection.open(fixture.port).then(async (c) => {
          await c.send("HELLO 4\r\nQUIT\r\n");
          const out = await c.receiveUntilClosed();
          c.close();
          return out.text;
        }),
        "-NOPROTO unsupported protocol version\r\n+OK\r\n",
      );
    });
    await t.step("1,000 pipelined commands in one write are answered in order", async () => {
      const raw = await RawConnection.open(fixture.port);
      let input = "";
      let expected = "";
      for (let i = 0; i < 500; i++) {
        input += `*3\r\n$4\r\nINCR\r\n$0\r\n\r\n`.replace("*3", "*2").replace(
          "$0\r\n\r\n",
          "$4\r\npipe\r\n",
        );
        input += `ECHO e${i}\r\n`;
        expected += `:${i + 1}\r\n$${String(i).length + 1}\r\ne${i}\r\n`;
      }
      await raw.send(input);
      assert.equal(await raw.receive(expected.length), expected);
      raw.close();
    });
    await t.step(
      "garbage is answered with Redis's protocol error, then the connection closes",
      async () => {
        const cases: [string, string][] = [
          [
            "PING\r\n*1\r\n$99999999999\r\n",
            "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
          ],
          ["*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"],
          ["*1\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"],
          ['SET "a b\r\n', "-ERR Protocol error: unbalanced quotes in request\r\n"],
        ];
        for (const [input, expected] of cases) {
          const raw = await RawConnection.open(fixture.port);
          await raw.send(input);
          const { text, closed } = await raw.receiveUntilClosed();
          raw.close();
          assert.equal(text, expected, JSON.stringify(input));
          assert.ok(closed, `closed after ${JSON.stringify(input)}`);
        }
      },
    );
    await t.step("a value longer than the bulk limit is refused; APPEND past it too", async () => {
      const { send, close } = await npmClient(fixture.port);
      try {
        const { REDIS_PROTO_MAX_BULK_BYTES } = await import("../../src/constants.ts");
        const half = "x".repeat(REDIS_PROTO_MAX_BULK_BYTES / 2 + 1);
        assert.equal(await send(["SET", "big", half]), "OK");
        assert.equal(await send(["STRLEN", "big"]), half.length);
        assert.deepEqual(await send(["APPEND", "big", half]), {
          error: "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        });
        assert.deepEqual(await send(["SETRANGE", "big", String(REDIS_PROTO_MAX_BULK_BYTES), "x"]), {
          error: "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        });
      } finally {
        await close();
      }
    });
  } finally {
    await fixture.stop();
  }
});
