/**
 * The gateway's batches running at once (`executor.ts`, `job_order.ts`) over a real standalone
 * store: what Redis's single thread guarantees still holds when batches on different keys run
 * in parallel — no lost INCR on any key, a connection's commands take effect in the order sent
 * (as another client sees them), MULTI/EXEC over several keys is atomic, replies keep order.
 */
import assert from "node:assert/strict";
import { decodeRecord, recordKey } from "../../src/gateway/redis/layout.ts";
import { npmClient } from "./redis_client.ts";
import { RawConnection, standaloneGateway } from "./redis_lib.ts";

/** Most rounds a reader polls for (bounded loops). */
const READER_MAX_ROUNDS = 2_000;

Deno.test("Redis gateway: concurrent batches keep Redis's order and atomicity", async (t) => {
  const fixture = await standaloneGateway();
  const reader = await npmClient(fixture.port);
  try {
    await t.step("30 clients INCR 6 keys, 20 times each: no count lost on any key", async () => {
      const clients = await Promise.all(Array.from({ length: 30 }, () => npmClient(fixture.port)));
      const expected = new Map<string, number>();
      try {
        await Promise.all(clients.map(async (client, c) => {
          for (let i = 0; i < 20; i++) {
            const key = `ctr${(c * 7 + i * 3) % 6}`;
            expected.set(key, (expected.get(key) ?? 0) + 1);
            await client.send(i % 2 === 0 ? ["INCR", key] : ["INCRBY", key, "1"]);
          }
        }));
      } finally {
        await Promise.all(clients.map((client) => client.close()));
      }
      for (const [key, count] of expected) {
        assert.equal(await reader.send(["GET", key]), String(count), key);
      }
      assert.equal([...expected.values()].reduce((a, b) => a + b), 600);
    });

    await t.step("a pipeline's writes on many keys are seen in the order sent", async () => {
      // Writer, in one pipeline per round r: SET r<r>:item<i> for i = 0..N-1 (distinct keys,
      // several batches), then SET round r. A snapshot that sees round = r must see every item
      // of round r: Redis runs a connection's commands in order, so the flag is written last.
      // The reader reads the store directly (a TxnKV snapshot, as another gateway would), not
      // through this gateway, whose own reads wait for the writes on their keys anyway.
      const kv = fixture.gateway.state.kv;
      const encoder = new TextEncoder();
      const writer = await RawConnection.open(fixture.port);
      const items = 400;
      const rounds = 3;
      try {
        for (let r = 1; r <= rounds; r++) {
          let wire = "";
          for (let i = 0; i < items; i++) {
            const key = `r${r}:item${i}`;
            wire += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\nv\r\n`;
          }
          wire += `*3\r\n$3\r\nSET\r\n$5\r\nround\r\n$1\r\n${r}\r\n`;
          await writer.send(wire);
          let seen = 0;
          for (let poll = 0; poll < READER_MAX_ROUNDS && seen < r; poll++) {
            const snapshot = await kv.snapshot();
            const flag = await snapshot.get(recordKey(encoder.encode("round")));
            if (flag === null) continue;
            const value = decodeRecord(flag).value;
            seen = Number(new TextDecoder().decode(value));
            if (seen !== r) continue;
            const keys = Array.from(
              { length: items },
              (_, i) => recordKey(encoder.encode(`r${r}:item${i}`)),
            );
            const found = await snapshot.batchGet(keys);
            assert.equal(found.size, items, `round ${r} is set but only ${found.size} items are`);
          }
          assert.equal(seen, r, "the reader saw the round's flag within its polls");
          // Replies in order, one +OK per SET.
          const expected = "+OK\r\n".repeat(items + 1);
          assert.equal(await writer.receive(expected.length), expected);
        }
      } finally {
        writer.close();
      }
    });

    await t.step("MULTI/EXEC over 4 keys is atomic for readers and for other writers", async () => {
      const keys = ["acct:a", "acct:b", "acct:c", "acct:d"];
      await reader.send(["MSET", ...keys.flatMap((key) => [key, "100"])]);
      const movers = await Promise.all(Array.from({ length: 6 }, () => npmClient(fixture.port)));
      let stop = false;
      const sums: number[] = [];
      const watcher = (async () => {
        for (let round = 0; round < READER_MAX_ROUNDS && !stop; round++) {
          const values = await reader.send(["MGET", ...keys]) as string[];
          sums.push(values.reduce((sum, value) => sum + Number(value), 0));
        }
      })();
      try {
        await Promise.all(movers.map(async (mover, m) => {
          for (let i = 0; i < 15; i++) {
            const from = keys[(m + i) % 4]!;
            const to = keys[(m + i + 1 + (i % 3)) % 4]!;
            assert.equal(await mover.send(["MULTI"]), "OK");
            await mover.send(["DECRBY", from, "7"]);
            await mover.send(["INCRBY", to, "7"]);
            const replies = await mover.send(["EXEC"]) as number[];
            assert.equal(replies.length, 2);
          }
        }));
      } finally {
        stop = true;
        await watcher;
        await Promise.all(movers.map((mover) => mover.close()));
      }
      assert(sums.length > 0);
      assert.deepEqual(sums.filter((sum) => sum !== 400), [], "every snapshot keeps the total");
      const final = await reader.send(["MGET", ...keys]) as string[];
      assert.equal(final.reduce((sum, value) => sum + Number(value), 0), 400);
    });

    await t.step(
      "WATCH then EXEC pipelined across keys of other batches keeps WATCH's meaning",
      async () => {
        const a = await npmClient(fixture.port);
        try {
          await reader.send(["SET", "w", "0"]);
          // Pipelined by node-redis: WATCH, MULTI, SET, EXEC go out together; nothing changed w.
          const [watched, multi, queued, exec] = await Promise.all([
            a.send(["WATCH", "w"]),
            a.send(["MULTI"]),
            a.send(["SET", "other", "1"]),
            a.send(["EXEC"]),
          ]);
          assert.deepEqual([watched, multi, queued, exec], ["OK", "OK", "QUEUED", ["OK"]]);
          assert.equal(await a.send(["WATCH", "w"]), "OK");
          assert.equal(await reader.send(["INCR", "w"]), 1);
          assert.equal(await a.send(["MULTI"]), "OK");
          assert.equal(await a.send(["SET", "other", "2"]), "QUEUED");
          assert.equal(await a.send(["EXEC"]), null);
          assert.equal(await reader.send(["GET", "other"]), "1");
        } finally {
          await a.close();
        }
      },
    );
  } finally {
    await reader.close();
    await fixture.stop();
  }
});
