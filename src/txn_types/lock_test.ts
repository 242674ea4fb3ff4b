import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { catchError, hex, type Prng, withSeed } from "../codec/test_support.ts";
import { fromHex, utf8 } from "../util/bytes.ts";
import {
  decodeLock,
  encodeLock,
  type Lock,
  lockToLockInfo,
  type LockType,
  newLock,
  SHORT_VALUE_MAX_LEN,
} from "./lock.ts";
import { RecordFormatError } from "./record_codec.ts";
import { AssertionError } from "../util/assert.ts";

// Byte vectors derived by hand from TiKV's `Lock::to_bytes` rules: type byte, compact-bytes
// primary (zigzag varint length), varint start_ts, varint ttl, then prefixed optional fields.
const VECTORS: { name: string; lock: Lock; hex: string }[] = [
  {
    name: "Put with a short value",
    lock: newLock({
      lockType: "Put",
      primary: utf8("pk"),
      startTs: 10n,
      ttlMs: 3000n,
      shortValue: utf8("v1"),
    }),
    // 'P' | len zigzag(2)=4, "pk" | 10 | 3000 = b8 17 | 'v' 2 "v1"
    hex: "50" + "04706b" + "0a" + "b817" + "76027631",
  },
  {
    name: "pessimistic transaction with async commit and rollback ts",
    lock: newLock({
      lockType: "Delete",
      primary: utf8("p"),
      startTs: 456n,
      ttlMs: 0n,
      forUpdateTs: 12n,
      txnSize: 3n,
      minCommitTs: 20n,
      useAsyncCommit: true,
      secondaries: [utf8("s1")],
      rollbackTs: [7n],
    }),
    hex: "44" + "0270" + "c803" + "00" +
      "66000000000000000c" + // 'f' for_update_ts
      "740000000000000003" + // 't' txn_size
      "630000000000000014" + // 'c' min_commit_ts
      "6101" + "047331" + // 'a' 1 secondary "s1"
      "7201" + "0000000000000007", // 'r' 1 rollback ts
  },
  {
    name: "pessimistic lock with last change, source, conflict flag and generation",
    lock: newLock({
      lockType: "Pessimistic",
      primary: new Uint8Array(),
      startTs: 1n,
      ttlMs: 1n,
      forUpdateTs: 2n,
      lastChange: { kind: "Exist", lastChangeTs: 5n, estimatedVersionsToLastChange: 2n },
      txnSource: 1n,
      isLockedWithConflict: true,
      generation: 9n,
    }),
    hex: "53" + "00" + "01" + "01" + "660000000000000002" + "6c000000000000000502" +
      "7301" + "46" + "670000000000000009",
  },
];

Deno.test("encodeLock matches byte vectors derived from TiKV's format", () => {
  for (const vector of VECTORS) {
    assertEquals(hex(encodeLock(vector.lock)), vector.hex, vector.name);
    assertEquals(decodeLock(fromHex(vector.hex)), vector.lock, vector.name);
  }
});

Deno.test("decodeLock reads a record that ends after start_ts as ttl 0 (TiKV parse)", () => {
  const lock = decodeLock(fromHex("4c" + "0270" + "05"));
  assertEquals(lock.lockType, "Lock");
  assertEquals(lock.ttlMs, 0n);
  assertEquals(lock.startTs, 5n);
});

function randomLock(prng: Prng): Lock {
  const types: LockType[] = ["Put", "Delete", "Lock", "Pessimistic"];
  const useAsyncCommit = prng.below(2) === 0;
  return newLock({
    lockType: types[prng.below(types.length)]!,
    primary: prng.bytes(prng.below(40)),
    startTs: prng.u64(),
    ttlMs: prng.u64(),
    shortValue: prng.below(2) === 0 ? prng.bytes(prng.below(SHORT_VALUE_MAX_LEN + 1)) : null,
    forUpdateTs: prng.below(2) === 0 ? prng.u64() : 0n,
    txnSize: prng.below(2) === 0 ? prng.u64() : 0n,
    minCommitTs: prng.below(2) === 0 ? prng.u64() : 0n,
    useAsyncCommit,
    secondaries: useAsyncCommit
      ? Array.from({ length: prng.below(4) }, () => prng.bytes(prng.below(20)))
      : [],
    rollbackTs: Array.from({ length: prng.below(3) }, () => prng.u64()),
    lastChange: prng.below(3) === 0
      ? { kind: "NotExist" }
      : prng.below(2) === 0
      ? { kind: "Exist", lastChangeTs: prng.u64() | 1n, estimatedVersionsToLastChange: prng.u64() }
      : { kind: "Unknown" },
    txnSource: prng.below(2) === 0 ? prng.u64() : 0n,
    isLockedWithConflict: prng.below(2) === 0,
    generation: prng.below(2) === 0 ? prng.u64() : 0n,
  });
}

Deno.test("decodeLock(encodeLock(lock)) round-trips random locks", () => {
  withSeed((prng) => {
    for (let i = 0; i < 500; i++) {
      const lock = randomLock(prng);
      assertEquals(decodeLock(encodeLock(lock)), lock);
    }
  });
});

Deno.test("decodeLock rejects every truncation of a record that ends inside a field", () => {
  withSeed((prng) => {
    for (let i = 0; i < 50; i++) {
      const bytes = encodeLock(randomLock(prng));
      for (let cut = 0; cut < bytes.length; cut++) {
        const prefix = bytes.subarray(0, cut);
        // A cut exactly between two fields is a valid shorter record; any other cut must be
        // a RecordFormatError, never a wrong lock or a different exception.
        try {
          // (The one lenient cut, right after start_ts, reads as ttl 0 and re-encodes with it.)
          const again = hex(encodeLock(decodeLock(prefix)));
          assert(again === hex(prefix) || again === hex(prefix) + "00", `cut ${cut}: ${again}`);
        } catch (error) {
          assert(error instanceof RecordFormatError, `cut ${cut}: ${error}`);
          assertEquals(error.code, "bad_format_lock");
        }
      }
    }
  });
  catchError(() => decodeLock(new Uint8Array()), RecordFormatError);
  // Short value announces 5 bytes, has 2.
  const error = catchError(
    () => decodeLock(fromHex("50" + "0270" + "05" + "00" + "76057631")),
    RecordFormatError,
  );
  assert(error.message.includes("short value"), error.message);
});

Deno.test("decodeLock rejects unknown field prefixes, unknown types and shared locks", () => {
  const unknownFlag = catchError(
    () => decodeLock(fromHex("50" + "0270" + "05" + "00" + "7a")),
    RecordFormatError,
  );
  assert(unknownFlag.message.includes("unknown field prefix 0x7a"), unknownFlag.message);
  assertEquals(unknownFlag.offset, 5);
  const unknownType = catchError(
    () => decodeLock(fromHex("58" + "0270" + "05")),
    RecordFormatError,
  );
  assert(unknownType.message.includes("unknown lock type"), unknownType.message);
  const shared = catchError(() => decodeLock(fromHex("48" + "00")), RecordFormatError);
  assert(shared.message.includes("shared locks"), shared.message);
});

Deno.test("newLock refuses a short value longer than SHORT_VALUE_MAX_LEN", () => {
  throws(
    () =>
      newLock({
        lockType: "Put",
        primary: utf8("p"),
        startTs: 1n,
        shortValue: new Uint8Array(256),
      }),
    AssertionError,
  );
  throws(() => newLock({ lockType: "Put", primary: utf8("p"), startTs: -1n }), AssertionError);
  throws(
    () => newLock({ lockType: "Put", primary: utf8("p"), startTs: 1n, secondaries: [utf8("s")] }),
    AssertionError,
  );
});

Deno.test("lockToLockInfo fills kvproto's LockInfo as TiKV's into_lock_info does", () => {
  const lock = newLock({
    lockType: "Pessimistic",
    primary: utf8("pk"),
    startTs: 100n,
    ttlMs: 20n,
    forUpdateTs: 110n,
    txnSize: 2n,
    minCommitTs: 111n,
    useAsyncCommit: true,
    secondaries: [utf8("a")],
  });
  const info = kvrpcpb.LockInfo.decode(
    kvrpcpb.LockInfo.encode(lockToLockInfo(lock, utf8("k"))).finish(),
  );
  assertEquals(info.lockType, kvrpcpb.Op.PessimisticLock);
  assertEquals(info.lockVersion, 100n);
  assertEquals(info.lockTtl, 20n);
  assertEquals(info.lockForUpdateTs, 110n);
  assertEquals(info.minCommitTs, 111n);
  assertEquals(info.txnSize, 2n);
  assertEquals(info.useAsyncCommit, true);
  assertEquals(Array.from(info.key), Array.from(utf8("k")));
  assertEquals(Array.from(info.primaryLock), Array.from(utf8("pk")));
  assertEquals(info.secondaries.map((s) => Array.from(s)), [Array.from(utf8("a"))]);
  const put = lockToLockInfo(
    newLock({ lockType: "Delete", primary: utf8("p"), startTs: 1n }),
    utf8("k"),
  );
  assertEquals(put.lockType, kvrpcpb.Op.Del);
});
