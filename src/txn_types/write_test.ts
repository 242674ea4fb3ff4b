import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { catchError, hex, withSeed } from "../codec/test_support.ts";
import { fromHex, utf8 } from "../util/bytes.ts";
import { RecordFormatError } from "./record_codec.ts";
import {
  checkGcFenceAsLatestVersion,
  decodeWrite,
  encodeWrite,
  isProtectedRollback,
  newRollback,
  newWrite,
  type Write,
  type WriteType,
  writeTypeFromLockType,
} from "./write.ts";
import { AssertionError } from "../util/assert.ts";

// Derived from TiKV's `WriteRef::to_bytes` rules: type byte, varint start_ts, prefixed fields.
const VECTORS: { name: string; write: Write; hex: string }[] = [
  {
    name: "Put with a short value",
    write: newWrite({ writeType: "Put", startTs: 10n, shortValue: utf8("v1") }),
    hex: "50" + "0a" + "76027631",
  },
  { name: "Delete", write: newWrite({ writeType: "Delete", startTs: 1n << 20n }), hex: "44808040" },
  { name: "protected rollback", write: newRollback(5n, true), hex: "52" + "05" + "760170" },
  { name: "unprotected rollback", write: newRollback(5n, false), hex: "5205" },
  {
    name: "Put with overlapped rollback and a zero GC fence",
    write: newWrite({ writeType: "Put", startTs: 456n, hasOverlappedRollback: true, gcFence: 0n }),
    hex: "50" + "c803" + "52" + "460000000000000000",
  },
  {
    name: "Lock with last change NotExist and a txn source",
    write: newWrite({
      writeType: "Lock",
      startTs: 3n,
      lastChange: { kind: "NotExist" },
      txnSource: 2n,
    }),
    hex: "4c03" + "6c000000000000000001" + "5302",
  },
];

Deno.test("encodeWrite matches byte vectors derived from TiKV's format", () => {
  for (const vector of VECTORS) {
    assertEquals(hex(encodeWrite(vector.write)), vector.hex, vector.name);
    assertEquals(decodeWrite(fromHex(vector.hex)), vector.write, vector.name);
  }
});

Deno.test("decodeWrite(encodeWrite(write)) round-trips random writes", () => {
  const types: WriteType[] = ["Put", "Delete", "Lock", "Rollback"];
  withSeed((prng) => {
    for (let i = 0; i < 500; i++) {
      const writeType = types[prng.below(4)]!;
      // Only another transaction's commit record carries the flag, and a fence needs the flag.
      const hasOverlappedRollback = writeType !== "Rollback" && prng.below(2) === 0;
      const write = newWrite({
        writeType,
        startTs: prng.u64(),
        shortValue: prng.below(2) === 0 ? prng.bytes(prng.below(256)) : null,
        hasOverlappedRollback,
        gcFence: hasOverlappedRollback && prng.below(2) === 0 ? prng.u64() : null,
        lastChange: prng.below(2) === 0
          ? {
            kind: "Exist",
            lastChangeTs: prng.u64() | 1n,
            estimatedVersionsToLastChange: prng.u64(),
          }
          : { kind: "Unknown" },
        txnSource: prng.below(2) === 0 ? prng.u64() : 0n,
      });
      assertEquals(decodeWrite(encodeWrite(write)), write);
    }
  });
});

Deno.test("decodeWrite rejects truncated records, unknown types and unknown prefixes", () => {
  catchError(() => decodeWrite(new Uint8Array()), RecordFormatError);
  catchError(() => decodeWrite(fromHex("50")), RecordFormatError); // no start ts
  catchError(() => decodeWrite(fromHex("5080")), RecordFormatError); // varint cut
  const shortCut = catchError(() => decodeWrite(fromHex("500a760376")), RecordFormatError);
  assert(shortCut.message.includes("short value"), shortCut.message);
  assertEquals(shortCut.code, "bad_format_write");
  catchError(() => decodeWrite(fromHex("500a4600")), RecordFormatError); // gc fence cut
  const type = catchError(() => decodeWrite(fromHex("5a0a")), RecordFormatError);
  assert(type.message.includes("unknown write type byte 0x5a"), type.message);
  const prefix = catchError(() => decodeWrite(fromHex("500a7a")), RecordFormatError);
  assertEquals(prefix.offset, 2);
});

Deno.test("a write record breaking an invariant is refused when built, and read from disk as corrupt", () => {
  // TiKV's WriteRef::set_overlapped_rollback: a GC fence only with the overlapped flag.
  throws(() => newWrite({ writeType: "Put", startTs: 1n, gcFence: 5n }), AssertionError);
  throws(
    () => newWrite({ writeType: "Rollback", startTs: 1n, hasOverlappedRollback: true }),
    AssertionError,
  );
  // The same records as bytes on disk: corruption, a RecordFormatError, never an assertion.
  const fenceWithoutFlag = catchError(
    () => decodeWrite(fromHex("500a460000000000000005")),
    RecordFormatError,
  );
  assert(fenceWithoutFlag.message.includes("GC fence"), fenceWithoutFlag.message);
  catchError(() => decodeWrite(fromHex("520a52")), RecordFormatError); // a flagged rollback
  // With the flag, the same fence reads back.
  assertEquals(decodeWrite(fromHex("500a52460000000000000005")).gcFence, 5n);
});

Deno.test("rollback protection and GC fences read as TiKV defines them", () => {
  assert(isProtectedRollback(newRollback(1n, true)));
  assert(!isProtectedRollback(newRollback(1n, false)));
  assert(!isProtectedRollback(newWrite({ writeType: "Put", startTs: 1n, shortValue: utf8("p") })));
  const plain = newWrite({ writeType: "Put", startTs: 1n });
  assert(checkGcFenceAsLatestVersion(plain, 100n));
  const fencedNoNewer = { ...plain, hasOverlappedRollback: true, gcFence: 0n };
  assert(checkGcFenceAsLatestVersion(fencedNoNewer, 100n));
  const fenced = { ...plain, hasOverlappedRollback: true, gcFence: 50n };
  assert(checkGcFenceAsLatestVersion(fenced, 49n), "fence above read ts: valid");
  assert(!checkGcFenceAsLatestVersion(fenced, 50n), "fence version missing: GC-ed");
  assertEquals(writeTypeFromLockType("Put"), "Put");
  assertEquals(writeTypeFromLockType("Pessimistic"), null);
  throws(
    () => newWrite({ writeType: "Put", startTs: 1n, shortValue: new Uint8Array(256) }),
    AssertionError,
  );
});
