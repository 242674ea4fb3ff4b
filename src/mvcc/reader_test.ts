import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { utf8 } from "../util/bytes.ts";
import { newRollback } from "../txn_types/write.ts";
import { DefaultNotFoundError } from "./reader.ts";
import { key, MvccFixture } from "./test_support.ts";

Deno.test("seekWrite finds the newest record at or below ts and never crosses into the next key", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v1", { startTs: 5n, commitTs: 10n });
  fx.commitPut("k", "v2", { startTs: 15n, commitTs: 20n });
  fx.commitPut("k\0", "other", { startTs: 1n, commitTs: 2n });
  fx.read((reader) => {
    assertEquals(reader.seekWrite(key("k"), 9n), null);
    assertEquals(reader.seekWrite(key("k"), 10n)?.commitTs, 10n);
    assertEquals(reader.seekWrite(key("k"), 19n)?.write.startTs, 5n);
    assertEquals(reader.seekWrite(key("k"), 25n)?.commitTs, 20n);
    assertEquals(reader.seekWrite(key("j"), 100n), null);
    assertEquals(reader.seekWrite(key("k\0"), 1n), null);
  });
});

Deno.test("getWrite skips Lock and Rollback records and stops at a Delete", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v1", { startTs: 5n, commitTs: 10n });
  fx.putWrite("k", 12n, { writeType: "Lock", startTs: 11n });
  fx.putWrite("k", 13n, newRollback(13n, false));
  fx.commitDelete("k", { startTs: 20n, commitTs: 21n });
  fx.putWrite("k", 30n, { writeType: "Lock", startTs: 29n });
  fx.read((reader) => {
    assertEquals(reader.getWriteWithCommitTs(key("k"), 13n, 13n)?.commitTs, 10n);
    assertEquals(reader.get(key("k"), 13n), utf8("v1"));
    assertEquals(reader.getWrite(key("k"), 21n, 21n), null);
    assertEquals(reader.getWrite(key("k"), 40n, 40n), null, "Lock over a Delete: absent");
    assertEquals(reader.getWrite(key("k"), 4n, 4n), null);
  });
});

Deno.test("getWrite honours GC fences and follows last-change pointers past SEEK_BOUND", () => {
  const fx = new MvccFixture();
  // Put@10 rewritten with a fence at 20, but the Delete@20 it points to was GC-ed.
  fx.putWrite("k", 10n, {
    writeType: "Put",
    startTs: 5n,
    shortValue: utf8("old"),
    hasOverlappedRollback: true,
    gcFence: 20n,
  });
  fx.read((reader) => {
    assertEquals(reader.getWrite(key("k"), 15n, 15n)?.startTs, 5n, "fence above read ts");
    assertEquals(reader.getWrite(key("k"), 25n, 25n), null, "fenced version gone");
    assertEquals(reader.getWrite(key("k"), 25n, null)?.startTs, 5n, "no limit: no check");
  });
  fx.commitPut("j", "base", { startTs: 1n, commitTs: 2n });
  fx.putWrite("j", 50n, {
    writeType: "Lock",
    startTs: 49n,
    lastChange: { kind: "Exist", lastChangeTs: 2n, estimatedVersionsToLastChange: 8n },
  });
  fx.putWrite("k2", 50n, { writeType: "Lock", startTs: 49n, lastChange: { kind: "NotExist" } });
  fx.commitPut("k2", "hidden", { startTs: 1n, commitTs: 2n });
  fx.read((reader) => {
    assertEquals(reader.get(key("j"), 60n), utf8("base"));
    assertEquals(reader.get(key("k2"), 60n), null, "NotExist ends the search");
  });
});

Deno.test("getTxnCommitRecord tells commit, rollback, overlapped rollback and nothing apart", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "a", { startTs: 5n, commitTs: 10n });
  fx.putWrite("k", 7n, newRollback(7n, true));
  fx.putWrite("k", 20n, {
    writeType: "Put",
    startTs: 15n,
    shortValue: utf8("b"),
    hasOverlappedRollback: true,
  });
  fx.commitPut("k", "c", { startTs: 25n, commitTs: 30n });
  fx.read((reader) => {
    assertEquals(reader.getTxnCommitRecord(key("k"), 5n), {
      kind: "SingleRecord",
      commitTs: 10n,
      write: reader.seekWrite(key("k"), 10n)!.write,
    });
    const rollback = reader.getTxnCommitRecord(key("k"), 7n);
    assert(rollback.kind === "SingleRecord" && rollback.write.writeType === "Rollback");
    assertEquals(reader.getTxnCommitRecord(key("k"), 20n), {
      kind: "OverlappedRollback",
      commitTs: 20n,
    });
    const overlapped = reader.getTxnCommitRecord(key("k"), 30n);
    assert(overlapped.kind === "None" && overlapped.overlappedWrite !== null);
    assertEquals(overlapped.overlappedWrite.write.startTs, 25n);
    assertEquals(overlapped.overlappedWrite.gcFence, 0n, "no newer version");
    assertEquals(reader.getTxnCommitRecord(key("k"), 8n), { kind: "None", overlappedWrite: null });
    assertEquals(reader.getTxnCommitRecord(key("k"), 40n), { kind: "None", overlappedWrite: null });
  });
  // The GC fence of an overlapped write is the commit ts of the next newer Put/Delete.
  const overlappedFx = new MvccFixture();
  overlappedFx.commitPut("k", "a", { startTs: 5n, commitTs: 10n });
  overlappedFx.putWrite("k", 12n, { writeType: "Lock", startTs: 11n });
  overlappedFx.commitDelete("k", { startTs: 13n, commitTs: 14n });
  overlappedFx.read((reader) => {
    const record = reader.getTxnCommitRecord(key("k"), 10n);
    assert(record.kind === "None" && record.overlappedWrite !== null);
    assertEquals(record.overlappedWrite.gcFence, 14n);
  });
});

Deno.test("getTxnCommitRecord finds an older start ts committed after a newer one (pessimistic)", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "newer", { startTs: 20n, commitTs: 25n });
  fx.commitPut("k", "older", { startTs: 10n, commitTs: 30n });
  fx.read((reader) => {
    const record = reader.getTxnCommitRecord(key("k"), 10n);
    assert(record.kind === "SingleRecord");
    assertEquals(record.commitTs, 30n);
  });
});

Deno.test("loadData reads long values from the default CF and throws when one is missing", () => {
  const fx = new MvccFixture();
  const long = new Uint8Array(300).fill(7);
  fx.commitPut("k", long, { startTs: 5n, commitTs: 10n });
  fx.putWrite("lost", 10n, { writeType: "Put", startTs: 5n });
  fx.read((reader) => {
    assertEquals(reader.get(key("k"), 10n), long);
    assertEquals(reader.scanValuesInDefault(key("k")), [{ startTs: 5n, value: long }]);
    throws(() => reader.get(key("lost"), 10n), DefaultNotFoundError);
  });
});

Deno.test("scanLocks filters, bounds and limits, reporting whether more may remain", () => {
  const fx = new MvccFixture();
  for (const [name, ts] of [["a", 1n], ["b", 2n], ["c", 3n], ["d", 4n]] as const) {
    fx.putLock(name, { lockType: "Put", startTs: ts, primary: "a" });
  }
  fx.read((reader) => {
    const all = reader.scanLocks({ start: null, end: null, limit: 0 });
    assertEquals(all.locks.map((l) => l.key.toString()), ['"a"', '"b"', '"c"', '"d"']);
    assertEquals(all.hasRemain, false);
    const bounded = reader.scanLocks({ start: key("b"), end: key("d"), limit: 10 });
    assertEquals(bounded.locks.map((l) => l.lock.startTs), [2n, 3n]);
    const limited = reader.scanLocks({
      start: null,
      end: null,
      filter: (_key, lock) => lock.startTs % 2n === 0n,
      limit: 1,
    });
    assertEquals(limited.locks.map((l) => l.lock.startTs), [2n]);
    assertEquals(limited.hasRemain, true);
  });
});
