import assert from "node:assert/strict";
import { compareBytes, toHex } from "../util/bytes.ts";
import {
  LEGACY_TTL_INDEX_BOUNDS,
  legacyTtlIndexKey,
  TTL_INDEX_BOUNDS,
  ttlIndexKey,
} from "../storage/ttl_index.ts";
import {
  applyStateKey,
  parseRaftLogKey,
  parseRegionStateKey,
  raftLogKey,
  raftLogRange,
  raftStateKey,
  regionMetaRange,
  regionStateKey,
  storeIdentKey,
} from "./keys.ts";

const U64_MAX = 2n ** 64n - 1n;

Deno.test("local keys have TiKV's bytes (components/keys/src/lib.rs)", () => {
  assert.equal(toHex(storeIdentKey()), "0101");
  assert.equal(toHex(raftLogKey(1n, 2n)), "0102" + "0000000000000001" + "01" + "0000000000000002");
  assert.equal(toHex(raftStateKey(1n)), "0102" + "0000000000000001" + "02");
  assert.equal(toHex(applyStateKey(1n)), "0102" + "0000000000000001" + "03");
  assert.equal(toHex(regionStateKey(258n)), "0103" + "0000000000000102" + "01");
});

Deno.test("raft log keys sort by region, then index; a region's states sort after its whole log", () => {
  const keys = [
    raftLogKey(1n, 0n),
    raftLogKey(1n, 255n),
    raftLogKey(1n, 256n),
    raftLogKey(1n, U64_MAX),
    raftStateKey(1n),
    applyStateKey(1n),
    raftLogKey(2n, 0n),
    raftStateKey(2n),
    regionStateKey(1n),
    regionStateKey(2n),
  ];
  for (let i = 1; i < keys.length; i++) {
    assert.ok(compareBytes(keys[i - 1]!, keys[i]!) < 0, `key ${i - 1} < key ${i}`);
  }
  const whole = raftLogRange(1n);
  const inside = (k: Uint8Array) =>
    compareBytes(k, whole.start) >= 0 && compareBytes(k, whole.end) < 0;
  assert.ok(inside(raftLogKey(1n, 0n)) && inside(raftLogKey(1n, U64_MAX)));
  assert.ok(!inside(raftStateKey(1n)) && !inside(raftLogKey(2n, 0n)) && !inside(applyStateKey(1n)));
  const part = raftLogRange(1n, { lo: 5n, hi: 9n });
  assert.equal(toHex(part.start), toHex(raftLogKey(1n, 5n)));
  assert.equal(toHex(part.end), toHex(raftLogKey(1n, 9n)));
  assert.throws(() => raftLogRange(1n, { lo: 9n, hi: 5n }), RangeError);
  assert.throws(() => raftLogKey(1n, -1n), RangeError);
  assert.throws(() => raftStateKey(U64_MAX + 1n), RangeError);
});

Deno.test("raft log and region state keys parse back; other keys are not mistaken for them", () => {
  assert.deepEqual(parseRaftLogKey(raftLogKey(7n, U64_MAX)), { regionId: 7n, index: U64_MAX });
  assert.equal(parseRaftLogKey(raftStateKey(7n)), null);
  assert.equal(parseRaftLogKey(regionStateKey(7n)), null);
  assert.equal(parseRegionStateKey(regionStateKey(U64_MAX)), U64_MAX);
  assert.equal(parseRegionStateKey(applyStateKey(7n)), null);
  assert.equal(parseRegionStateKey(storeIdentKey()), null);
});

Deno.test("local keys cannot collide with the raw TTL expiry index, the other tenant of CF raft", () => {
  const ours = [
    storeIdentKey(),
    raftLogKey(0n, 0n),
    raftLogKey(U64_MAX, U64_MAX),
    raftStateKey(U64_MAX),
    applyStateKey(0n),
    regionStateKey(0n),
    regionStateKey(U64_MAX),
  ];
  const ttl = [
    ttlIndexKey(0, "default", new Uint8Array(0)),
    ttlIndexKey(2 ** 32, "write", new Uint8Array([1, 2, 1])),
    ttlIndexKey(Number.MAX_SAFE_INTEGER, "lock", new Uint8Array(300).fill(0xff)),
    legacyTtlIndexKey(0, "default", new Uint8Array(0)),
    legacyTtlIndexKey(Number.MAX_SAFE_INTEGER, "write", new Uint8Array(300).fill(0xff)),
  ];
  // Every TTL key is outside every range of ours, and every key of ours outside the TTL range.
  const ranges = [raftLogRange(0n), raftLogRange(U64_MAX), regionMetaRange()];
  for (const key of ttl) {
    for (const { start, end } of ranges) {
      assert.ok(compareBytes(key, start) < 0 || compareBytes(key, end) >= 0, toHex(key));
    }
    for (const k of ours) assert.notEqual(toHex(k.subarray(0, 2)), toHex(key.subarray(0, 2)));
  }
  // Every key of either index layout lies in TTL_INDEX_BOUNDS; no key of ours does.
  for (const key of ttl) {
    assert.ok(compareBytes(key, TTL_INDEX_BOUNDS.start) >= 0, toHex(key));
    assert.ok(compareBytes(key, TTL_INDEX_BOUNDS.end) < 0, toHex(key));
  }
  for (const bounds of [TTL_INDEX_BOUNDS, LEGACY_TTL_INDEX_BOUNDS]) {
    for (const key of ours) {
      const inside = compareBytes(key, bounds.start) >= 0 && compareBytes(key, bounds.end) < 0;
      assert.ok(!inside, `the TTL index's bounds must not reach ${toHex(key)}`);
    }
  }
});
