import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { MvccTxn } from "../../mvcc/txn.ts";
import { SeededRandom } from "../../util/random.ts";
import { gc, gcKeys } from "./gc.ts";
import { key, MvccFixture, run } from "./test_support.ts";

/**
 * Lays down a random history on `rawKey`: Puts (short and long), Deletes, Lock records and
 * Rollbacks at increasing timestamps. Returns the largest ts used.
 */
function randomHistory(fx: MvccFixture, rawKey: string, random: SeededRandom): bigint {
  let ts = 1n;
  const versions = 1 + random.int(12);
  for (let i = 0; i < versions; i++) {
    const startTs = ts;
    const commitTs = ts + 1n + BigInt(random.int(3));
    ts = commitTs + 1n;
    const choice = random.int(5);
    if (choice === 0) fx.commitDelete(rawKey, { startTs, commitTs });
    else if (choice === 1) fx.putWrite(rawKey, commitTs, { writeType: "Lock", startTs });
    else if (choice === 2) fx.putWrite(rawKey, startTs, { writeType: "Rollback", startTs });
    else {
      const long = random.chance(0.3);
      const value = long ? `${i}`.padEnd(300, "x") : `v${i}`;
      fx.commitPut(rawKey, value, { startTs, commitTs });
    }
  }
  return ts;
}

Deno.test("gc() never changes what a read at or above the safe point sees (random histories, seeds 1..200)", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = new SeededRandom(seed);
    const fx = new MvccFixture();
    const maxTs = randomHistory(fx, "k", random);
    const safePoint = BigInt(random.int(Number(maxTs) + 2));
    const before: (string | null)[] = [];
    for (let ts = safePoint; ts <= maxTs + 1n; ts++) before.push(fx.get("k", ts));
    const { result } = run(fx, 0n, (txn, reader) => gc(txn, reader, { key: key("k"), safePoint }));
    assert(result.ok && result.value.isCompleted, `seed ${seed}`);
    const after: (string | null)[] = [];
    for (let ts = safePoint; ts <= maxTs + 1n; ts++) after.push(fx.get("k", ts));
    assertEquals(after, before, `seed ${seed}: reads changed (safe point ${safePoint})`);

    // Nothing at or below the safe point survives except the one visible Put, and no
    // default-CF value is left without its Put.
    const writes = fx.writes("k");
    const old = writes.filter((w) => w.commitTs <= safePoint);
    assert(old.length <= 1, `seed ${seed}: ${old.length} old versions kept`);
    if (old.length === 1) assertEquals(old[0]!.write.writeType, "Put", `seed ${seed}`);
    const putStarts = new Set(writes.map((w) => w.write.startTs));
    const values = fx.read((reader) => reader.scanValuesInDefault(key("k")));
    for (const { startTs } of values) assert(putStarts.has(startTs), `seed ${seed}: orphan value`);
  }
});

Deno.test("gc() keeps a Put newer than the safe point and everything above it", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "old", { startTs: 1n, commitTs: 2n });
  fx.commitPut("k", "new", { startTs: 10n, commitTs: 11n });
  const { result } = run(
    fx,
    0n,
    (txn, reader) => gc(txn, reader, { key: key("k"), safePoint: 5n }),
  );
  assertEquals(result, {
    ok: true,
    value: { foundVersions: 2, deletedVersions: 0, isCompleted: true },
  });
  assertEquals(fx.get("k", 5n), "old");
  assertEquals(fx.get("k", 11n), "new");
});

Deno.test("gcKeys() stops at the first unfinished key and names it as the resume key", () => {
  const fx = new MvccFixture();
  for (const name of ["a", "b", "c"]) {
    for (let i = 0n; i < 4n; i++) {
      fx.commitPut(name, `${name}${i}`, { startTs: 10n * i + 1n, commitTs: 10n * i + 2n });
    }
  }
  const keys = [key("a"), key("b"), key("c")];
  // A budget that fits the garbage of about one key.
  const budget = 40;
  let from = 0;
  let rounds = 0;
  for (; rounds < 10 && from < keys.length; rounds++) {
    const txn = new MvccTxn(0n);
    const result = fx.read((reader) =>
      gcKeys(txn, reader, { keys: keys.slice(from), safePoint: 100n, maxWriteBytes: budget })
    );
    assert(result.ok);
    fx.write(txn);
    if (result.value.resumeKey === null) break;
    assert(result.value.resumeKey.compare(keys[from]!) >= 0, "resume moves forward");
    assertEquals(result.value.info.isCompleted, false);
    from = keys.findIndex((k) => k.equals(result.value.resumeKey!));
  }
  assert(rounds >= 2, `the budget should force several rounds, took ${rounds + 1}`);
  for (const name of ["a", "b", "c"]) {
    assertEquals(fx.writes(name).map((w) => w.commitTs), [32n], `key ${name}`);
    assertEquals(fx.get(name, 100n), `${name}3`);
  }
});
