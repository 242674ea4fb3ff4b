import assert from "node:assert/strict";
import { RAFT_ENTRY_CACHE_MAX_BYTES, RAFT_ENTRY_CACHE_MAX_ENTRIES } from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { metapb } from "../../proto/mod.ts";
import { type Entry, newEntry } from "../raft/mod.ts";
import { EntryCache } from "./entry_cache.ts";
import { PeerState } from "./local_state.ts";
import { PeerStorage, writeInitialPeerState } from "./peer_storage.ts";

const ents = (term: bigint, lo: bigint, hi: bigint, bytes = 0): Entry[] => {
  const out: Entry[] = [];
  for (let i = lo; i < hi; i++) out.push(newEntry({ term, index: i, data: new Uint8Array(bytes) }));
  return out;
};

Deno.test("the entry cache evicts its oldest entries past maxEntries, never the latest append", () => {
  const cache = new EntryCache({ maxEntries: 4, maxBytes: 1 << 20 });
  cache.append(ents(1n, 1n, 4n));
  cache.append(ents(1n, 4n, 7n));
  assert.equal(cache.length, 4);
  assert.equal(cache.firstIndex(), 3n);
  cache.append(ents(1n, 7n, 17n)); // Larger than the limit: all ten stay.
  assert.equal(cache.length, 10);
  assert.equal(cache.firstIndex(), 7n);
  cache.append(ents(1n, 17n, 18n));
  assert.equal(cache.length, 4);
  assert.deepEqual(cache.slice(14n, 18n).map((e) => e.index), [14n, 15n, 16n, 17n]);
});

Deno.test("the entry cache evicts past maxBytes and counts bytes back on every removal", () => {
  const cache = new EntryCache({ maxEntries: 1000, maxBytes: 1000 });
  cache.append(ents(1n, 1n, 5n, 200)); // 4 × (200 + 48) = 992 bytes.
  assert.equal(cache.length, 4);
  cache.append(ents(1n, 5n, 6n, 200));
  assert.equal(cache.length, 4);
  assert.ok(cache.sizeBytes <= 1000);
  cache.append(ents(2n, 4n, 5n, 0)); // Conflict at 4: 5 goes, 4 is replaced.
  assert.deepEqual(cache.slice(cache.firstIndex()!, 5n).map((e) => `${e.index}@${e.term}`), [
    "2@1",
    "3@1",
    "4@2",
  ]);
  assert.equal(cache.sizeBytes, 2 * 248 + 48);
  cache.compactTo(4n);
  assert.equal(cache.sizeBytes, 48);
  cache.append(ents(2n, 9n, 10n)); // Not adjacent: the cache starts over.
  assert.equal(cache.firstIndex(), 9n);
  assert.equal(cache.sizeBytes, 48);
});

Deno.test("a peer's cache holds at most RAFT_ENTRY_CACHE_MAX_ENTRIES entries beyond its latest append", () => {
  const engine = new MemoryEngine();
  const batch = engine.newWriteBatch();
  writeInitialPeerState(batch, {
    state: PeerState.Normal,
    region: {
      id: 1n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [{ id: 2n, storeId: 1n, role: metapb.PeerRole.Voter }],
    },
  });
  engine.write(batch);
  const peer = PeerStorage.load(engine, 1n);
  let next = 6n;
  for (let round = 0; round < RAFT_ENTRY_CACHE_MAX_ENTRIES / 8 + 4; round++) {
    batch.clear();
    peer.append(batch, ents(5n, next, next + 10n));
    engine.write(batch);
    next += 10n;
    assert.ok(peer.cachedEntryCount() <= RAFT_ENTRY_CACHE_MAX_ENTRIES + 10);
  }
  assert.ok(peer.cachedEntryCount() >= RAFT_ENTRY_CACHE_MAX_ENTRIES);
  // And bytes: a few large entries fill the byte budget first.
  const big = Math.ceil(RAFT_ENTRY_CACHE_MAX_BYTES / 8);
  for (let round = 0; round < 12; round++) {
    batch.clear();
    peer.append(batch, ents(5n, next, next + 1n, big));
    engine.write(batch);
    next += 1n;
  }
  assert.ok(peer.cachedEntryCount() <= 8, `${peer.cachedEntryCount()} entries of ${big} bytes`);
  batch.destroy();
});
