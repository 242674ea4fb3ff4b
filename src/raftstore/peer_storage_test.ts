/**
 * Peer storage on both engines (the in-memory one and RocksDB in a temporary directory):
 * bootstrap state, append with conflicts, compaction, reload, bounds of every read, damaged
 * records, and a randomized model test against src/raft's MemoryStorage (etcd/raft's
 * `quick_test` style: the same operations on both, every read compared, restarts included).
 */
import assert from "node:assert/strict";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import type { KvEngine } from "../engine/types.ts";
import { metapb, raft_serverpb } from "../../proto/mod.ts";
import {
  type Entry,
  EntryType,
  MemoryStorage,
  newEntry,
  type Storage,
  StorageError,
} from "../raft/mod.ts";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import { toHex } from "../util/bytes.ts";
import { applyStateKey, raftLogKey, raftStateKey, regionStateKey } from "./keys.ts";
import {
  CorruptLocalStateError,
  encodeEntry,
  encodeRaftApplyState,
  PeerState,
  type RegionLocalState,
} from "./local_state.ts";
import {
  PeerStorage,
  RAFT_INIT_LOG_INDEX,
  RAFT_INIT_LOG_TERM,
  writeInitialPeerState,
} from "./peer_storage.ts";
import { LOCAL_CF, readRegionState, scanRegionStates, writeRegionState } from "./region_state.ts";

const REGION_ID = 7n;

function regionState(regionId = REGION_ID): RegionLocalState {
  return {
    state: PeerState.Normal,
    region: {
      id: regionId,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 3n, version: 1n },
      peers: [
        { id: 11n, storeId: 1n, role: metapb.PeerRole.Voter },
        { id: 12n, storeId: 2n, role: metapb.PeerRole.Voter },
        { id: 13n, storeId: 3n, role: metapb.PeerRole.Learner },
      ],
    },
  };
}

type EngineCase = {
  name: string;
  open: () => Promise<{ engine: KvEngine; done: () => Promise<void> }>;
};

const ENGINES: EngineCase[] = [
  {
    name: "memory engine",
    open: () => Promise.resolve({ engine: new MemoryEngine(), done: () => Promise.resolve() }),
  },
  {
    name: "RocksDB",
    open: async () => {
      const directory = await Deno.makeTempDir({ prefix: "basalt-peer-storage-" });
      const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
      return {
        engine,
        done: async () => {
          engine.close();
          await Deno.remove(directory, { recursive: true });
        },
      };
    },
  },
];

/** One test per engine. */
function engineTest(name: string, fn: (engine: KvEngine) => void | Promise<void>): void {
  for (const e of ENGINES) {
    Deno.test(`${name} (${e.name})`, async () => {
      const { engine, done } = await e.open();
      try {
        await fn(engine);
      } finally {
        await done();
      }
    });
  }
}

/** Runs `fn` with a fresh batch and writes it. */
function write(engine: KvEngine, fn: (batch: ReturnType<KvEngine["newWriteBatch"]>) => void): void {
  const batch = engine.newWriteBatch();
  try {
    fn(batch);
    engine.write(batch);
  } finally {
    batch.destroy();
  }
}

/** Ready duty 1 as a follower does it: `entries` and a hard state at least at their term. */
function persist(
  batch: ReturnType<KvEngine["newWriteBatch"]>,
  s: PeerStorage,
  entries: Entry[],
): void {
  s.append(batch, entries);
  const hs = s.raftState().hardState;
  const term = entries[entries.length - 1]!.term;
  if (term > hs.term) s.setHardState(batch, { ...hs, term });
}

function bootstrap(engine: KvEngine): PeerStorage {
  write(engine, (batch) => writeInitialPeerState(batch, regionState()));
  return PeerStorage.load(engine, REGION_ID);
}

const ents = (term: bigint, lo: bigint, hi: bigint): Entry[] => {
  const out: Entry[] = [];
  for (let i = lo; i < hi; i++) {
    out.push(newEntry({ term, index: i, data: new TextEncoder().encode(`e${i}@${term}`) }));
  }
  return out;
};

function storageError(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === code, code);
}

function corrupt(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CorruptLocalStateError, `expected CorruptLocalStateError, got ${e}`);
    assert.match(e.message, pattern);
    assert.match(e.message, new RegExp(`region ${REGION_ID}`));
    return true;
  });
}

engineTest(
  "a bootstrapped peer starts with TiKV's initial log: truncated at 5/5, nothing to read",
  (engine) => {
    const s = bootstrap(engine);
    assert.equal(s.firstIndex(), RAFT_INIT_LOG_INDEX + 1n);
    assert.equal(s.lastIndex(), RAFT_INIT_LOG_INDEX);
    assert.equal(s.term(5n), RAFT_INIT_LOG_TERM);
    assert.equal(s.appliedIndex(), 5n);
    assert.deepEqual(s.initialState().hardState, { term: 5n, vote: 0n, commit: 5n });
    assert.deepEqual(s.initialState().confState.voters, [11n, 12n]);
    assert.deepEqual(s.initialState().confState.learners, [13n]);
    assert.deepEqual(s.entries({ lo: 6n, hi: 6n }), []);
    storageError(() => s.entries({ lo: 5n, hi: 6n }), "Compacted");
    storageError(() => s.entries({ lo: 6n, hi: 7n }), "Unavailable");
    storageError(() => s.term(4n), "Compacted");
    storageError(() => s.term(6n), "Unavailable");
    const snap = s.snapshot();
    assert.deepEqual([snap.metadata.index, snap.metadata.term], [5n, 5n]);
    assert.deepEqual(snap.metadata.confState.voters, [11n, 12n]);
    assert.deepEqual(readRegionState(engine, REGION_ID), regionState());
  },
);

engineTest(
  "append overwrites a conflicting suffix and deletes what followed it, on disk too",
  (engine) => {
    const s = bootstrap(engine);
    write(engine, (b) => persist(b, s, ents(6n, 6n, 11n)));
    assert.equal(s.lastIndex(), 10n);
    // A new leader of term 7 replaces entries from 8 with a shorter log.
    write(engine, (b) => persist(b, s, ents(7n, 8n, 10n)));
    assert.equal(s.lastIndex(), 9n);
    assert.equal(s.term(7n), 6n);
    assert.equal(s.term(8n), 7n);
    assert.deepEqual(s.entries({ lo: 6n, hi: 10n }), [...ents(6n, 6n, 8n), ...ents(7n, 8n, 10n)]);
    assert.equal(engine.get(LOCAL_CF, raftLogKey(REGION_ID, 10n)), null, "entry 10 deleted");
    const reloaded = PeerStorage.load(engine, REGION_ID);
    assert.equal(reloaded.lastIndex(), 9n);
    assert.equal(reloaded.cachedEntryCount(), 0, "a reloaded peer reads from the engine");
    assert.deepEqual(reloaded.entries({ lo: 6n, hi: 10n }), s.entries({ lo: 6n, hi: 10n }));
    assert.equal(reloaded.term(9n), 7n);
  },
);

engineTest(
  "entries of an append are readable before its batch is written (served from the cache)",
  (engine) => {
    const s = bootstrap(engine);
    write(engine, (b) => persist(b, s, ents(6n, 6n, 9n)));
    const batch = engine.newWriteBatch();
    try {
      persist(batch, s, ents(7n, 7n, 12n)); // Overwrites 7 and 8, not written yet.
      assert.deepEqual(s.entries({ lo: 6n, hi: 12n }), [...ents(6n, 6n, 7n), ...ents(7n, 7n, 12n)]);
      assert.equal(s.term(8n), 7n);
      engine.write(batch);
    } finally {
      batch.destroy();
    }
    assert.equal(PeerStorage.load(engine, REGION_ID).term(8n), 7n);
  },
);

engineTest(
  "compact truncates the log by range; the truncated entry's term still answers",
  (engine) => {
    const s = bootstrap(engine);
    write(engine, (b) => {
      persist(b, s, ents(6n, 6n, 21n));
      s.setHardState(b, { term: 6n, vote: 11n, commit: 15n });
    });
    write(
      engine,
      (b) => s.setApplyState(b, { appliedIndex: 12n, commitIndex: 15n, commitTerm: 6n }),
    );
    assert.throws(() => write(engine, (b) => s.compact(b, 13n)), /beyond applied 12/);
    write(engine, (b) => s.compact(b, 10n));
    assert.equal(s.firstIndex(), 11n);
    assert.equal(s.term(10n), 6n);
    storageError(() => s.term(9n), "Compacted");
    storageError(() => s.entries({ lo: 10n, hi: 12n }), "Compacted");
    for (let i = 6n; i <= 10n; i++) {
      assert.equal(engine.get(LOCAL_CF, raftLogKey(REGION_ID, i)), null);
    }
    assert.notEqual(engine.get(LOCAL_CF, raftLogKey(REGION_ID, 11n)), null);
    write(engine, (b) => s.compact(b, 10n)); // Again: nothing changes.
    const reloaded = PeerStorage.load(engine, REGION_ID);
    assert.deepEqual(reloaded.applyState(), {
      appliedIndex: 12n,
      commitIndex: 15n,
      commitTerm: 6n,
      truncatedState: { index: 10n, term: 6n },
    });
    assert.equal(reloaded.firstIndex(), 11n);
    assert.deepEqual(reloaded.entries({ lo: 11n, hi: 21n }), ents(6n, 11n, 21n));
    // Compacting everything applied empties the log; its last term is the truncated term.
    write(engine, (b) => reloaded.compact(b, 12n));
    write(
      engine,
      (b) => reloaded.setApplyState(b, { appliedIndex: 15n, commitIndex: 15n, commitTerm: 6n }),
    );
  },
);

engineTest(
  "entries() keeps the longest prefix within maxSizeBytes, at least one entry, across engine and cache",
  (engine) => {
    const s = PeerStorage.load(
      (write(engine, (b) => writeInitialPeerState(b, regionState())), engine),
      REGION_ID,
      { cache: { maxEntries: 3, maxBytes: 1 << 20 } },
    );
    write(engine, (b) => persist(b, s, ents(6n, 6n, 12n))); // 6..11; the cache keeps all six.
    write(engine, (b) => persist(b, s, ents(6n, 12n, 14n))); // The cache now holds 11..13 at least.
    const one = s.entries({ lo: 6n, hi: 14n, maxSizeBytes: 1 });
    assert.equal(one.length, 1);
    const all = s.entries({ lo: 6n, hi: 14n });
    assert.equal(all.length, 8);
    const each = 24 + all[0]!.data.length; // src/raft's entrySizeBytes
    for (let n = 1; n <= 8; n++) {
      const got = s.entries({ lo: 6n, hi: 14n, maxSizeBytes: n * each + (each - 1) });
      assert.equal(got.length, Math.min(8, n), `budget for ${n} entries`);
    }
  },
);

engineTest(
  "a damaged record fails the load with an error naming the region, key and problem",
  (engine) => {
    const s = bootstrap(engine);
    write(engine, (b) => persist(b, s, ents(6n, 6n, 11n)));
    const raftKey = raftStateKey(REGION_ID);
    const good = engine.get(LOCAL_CF, raftKey)!;
    engine.put(LOCAL_CF, raftKey, new Uint8Array([0x0a, 0x05, 0x08]));
    corrupt(
      () => PeerStorage.load(engine, REGION_ID),
      new RegExp(`RaftLocalState at key ${toHex(raftKey)}`),
    );
    // Commit beyond the last index.
    engine.put(
      LOCAL_CF,
      raftKey,
      raft_serverpb.RaftLocalState.encode({
        hardState: { term: 6n, vote: 0n, commit: 11n },
        lastIndex: 10n,
      }).finish(),
    );
    corrupt(() => PeerStorage.load(engine, REGION_ID), /commit 11 is beyond the last index 10/);
    engine.put(LOCAL_CF, raftKey, good);
    // Applied beyond commit.
    engine.put(
      LOCAL_CF,
      applyStateKey(REGION_ID),
      encodeRaftApplyState({
        appliedIndex: 9n,
        commitIndex: 9n,
        commitTerm: 6n,
        truncatedState: { index: 5n, term: 5n },
      }),
    );
    corrupt(() => PeerStorage.load(engine, REGION_ID), /applied 9 > commit 5/);
    engine.delete(LOCAL_CF, applyStateKey(REGION_ID));
    // The last entry missing.
    const last = engine.get(LOCAL_CF, raftLogKey(REGION_ID, 10n))!;
    engine.delete(LOCAL_CF, raftLogKey(REGION_ID, 10n));
    corrupt(() => PeerStorage.load(engine, REGION_ID), /entry 10 is missing/);
    engine.put(LOCAL_CF, raftLogKey(REGION_ID, 10n), last);
    // An entry stored under another index.
    engine.put(LOCAL_CF, raftLogKey(REGION_ID, 8n), encodeEntry(newEntry({ term: 6n, index: 9n })));
    const loaded = PeerStorage.load(engine, REGION_ID); // Both ends are fine.
    corrupt(() => loaded.entries({ lo: 6n, hi: 11n }), /log entry at key .* it holds entry 9/);
    corrupt(() => loaded.term(8n), /it holds entry 9/);
    // A middle entry missing is found by the read that needs it.
    engine.delete(LOCAL_CF, raftLogKey(REGION_ID, 8n));
    corrupt(() => loaded.entries({ lo: 6n, hi: 11n }), /entry 8 is missing/);
    // An entry past the last one.
    engine.put(
      LOCAL_CF,
      raftLogKey(REGION_ID, 12n),
      encodeEntry(newEntry({ term: 6n, index: 12n })),
    );
    corrupt(() => PeerStorage.load(engine, REGION_ID), /an entry after the last 10/);
    // A region state naming another region.
    engine.put(LOCAL_CF, regionStateKey(REGION_ID), new Uint8Array(0));
    corrupt(() => PeerStorage.load(engine, REGION_ID), /RegionLocalState .* no region/);
    write(engine, (b) => writeRegionState(b, regionState(8n)));
    engine.put(LOCAL_CF, regionStateKey(REGION_ID), engine.get(LOCAL_CF, regionStateKey(8n))!);
    corrupt(() => PeerStorage.load(engine, REGION_ID), /it names region 8/);
    corrupt(() => scanRegionStates(engine), /it names region 8/);
  },
);

engineTest(
  "a region replica that does not exist is reported by name; a Tombstone is never loaded",
  (engine) => {
    corrupt(() => PeerStorage.load(engine, REGION_ID), /RegionLocalState at key 0103.*missing/);
    write(engine, (b) => writeRegionState(b, { ...regionState(), state: PeerState.Tombstone }));
    assert.throws(() => PeerStorage.load(engine, REGION_ID), /loading a Tombstone/);
  },
);

engineTest("a peer created by a message (no peers yet) starts from an empty log at 0", (engine) => {
  const empty = { ...regionState(), region: { ...regionState().region, peers: [] } };
  write(engine, (b) => writeRegionState(b, empty));
  const s = PeerStorage.load(engine, REGION_ID);
  assert.equal(s.firstIndex(), 1n);
  assert.equal(s.lastIndex(), 0n);
  assert.equal(s.term(0n), 0n);
  assert.deepEqual(s.initialState().hardState, { term: 0n, vote: 0n, commit: 0n });
  assert.deepEqual(s.initialState().confState.voters, []);
  write(engine, (b) => persist(b, s, ents(1n, 1n, 3n)));
  assert.deepEqual(
    PeerStorage.load(engine, REGION_ID).entries({ lo: 1n, hi: 3n }),
    ents(1n, 1n, 3n),
  );
});

// ---------------------------------------------------------------------------------------------
// Randomized model test against MemoryStorage.

/** A read's result as text: entries field by field, bigints and bytes readable. */
function describe(value: unknown): string {
  if (Array.isArray(value)) {
    return (value as Entry[]).map((e) =>
      `${e.entryType}/${e.term}/${e.index}/${toHex(e.data)}/${toHex(e.context)}`
    ).join(" ");
  }
  if (typeof value === "object" && value !== null) {
    const hs = value as { term: bigint; vote: bigint; commit: bigint };
    return `term ${hs.term} vote ${hs.vote} commit ${hs.commit}`;
  }
  return String(value);
}

/** The same reads of both storages, as one comparable trace (errors by code). */
function readTrace(s: Storage, random: SeededRandom): string {
  const lines: string[] = [];
  const attempt = (what: string, fn: () => unknown) => {
    try {
      lines.push(`${what} = ${describe(fn())}`);
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      lines.push(`${what} ! ${e.code}`);
    }
  };
  const first = s.firstIndex();
  const last = s.lastIndex();
  lines.push(`first ${first} last ${last}`);
  attempt("hardState", () => s.initialState().hardState);
  for (let i = first - 3n; i <= last + 2n; i++) if (i >= 0n) attempt(`term(${i})`, () => s.term(i));
  for (let k = 0; k < 4; k++) {
    const lo = first - 2n + BigInt(random.int(Number(last - first) + 5));
    const hi = lo + BigInt(random.int(8));
    const maxSizeBytes = random.pick([1, 64, 200, 1000, Number.MAX_SAFE_INTEGER]);
    if (lo < 0n) continue;
    attempt(`entries(${lo}, ${hi}, ${maxSizeBytes})`, () => s.entries({ lo, hi, maxSizeBytes }));
  }
  return lines.join("\n");
}

/** MemoryStorage in the state of a bootstrapped peer: truncated at 5/5, hard state 5/0/5. */
function modelOfBootstrap(): MemoryStorage {
  const m = new MemoryStorage();
  m.applySnapshot({
    data: new Uint8Array(0),
    metadata: {
      index: RAFT_INIT_LOG_INDEX,
      term: RAFT_INIT_LOG_TERM,
      confState: {
        voters: [11n, 12n],
        learners: [13n],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
    },
  });
  m.setHardState({ term: RAFT_INIT_LOG_TERM, vote: 0n, commit: RAFT_INIT_LOG_INDEX });
  return m;
}

async function modelTest(engine: KvEngine, steps: number): Promise<void> {
  const seed = seedFromEnv();
  const random = new SeededRandom(seed);
  const cache = { maxEntries: 4, maxBytes: 600 }; // Small: reads cross the engine/cache line.
  write(engine, (b) => writeInitialPeerState(b, regionState()));
  let peer = PeerStorage.load(engine, REGION_ID, { cache });
  const model = modelOfBootstrap();
  let applied = RAFT_INIT_LOG_INDEX;
  try {
    for (let step = 0; step < steps; step++) {
      const batch = engine.newWriteBatch();
      const hs = model.initialState().hardState;
      const op = random.int(10);
      if (op < 5) {
        // Append (conflicting or not) above the commit index, as a follower's log does.
        const lo = hs.commit + 1n + BigInt(random.int(Number(model.lastIndex() - hs.commit) + 1));
        let term = model.term(lo - 1n) > hs.term ? model.term(lo - 1n) : hs.term;
        if (random.chance(0.3)) term++;
        const entries: Entry[] = [];
        for (let i = 0; i < 1 + random.int(6); i++) {
          entries.push(newEntry({
            term,
            index: lo + BigInt(i),
            entryType: random.chance(0.1) ? EntryType.EntryConfChange : EntryType.EntryNormal,
            data: random.bytes(random.int(200)),
            context: random.bytes(random.chance(0.1) ? 3 : 0),
          }));
        }
        model.append(entries);
        peer.append(batch, entries);
        const next = { ...hs, term: term > hs.term ? term : hs.term };
        model.setHardState(next);
        peer.setHardState(batch, next);
      } else if (op < 7) {
        // Commit further (and perhaps vote), as a hard state change.
        const commit = hs.commit + BigInt(random.int(Number(model.lastIndex() - hs.commit) + 1));
        const next = { term: hs.term, vote: random.chance(0.5) ? 11n : hs.vote, commit };
        model.setHardState(next);
        peer.setHardState(batch, next);
      } else if (op < 9) {
        applied += BigInt(random.int(Number(hs.commit - applied) + 1));
        peer.setApplyState(batch, {
          appliedIndex: applied,
          commitIndex: hs.commit,
          commitTerm: hs.term,
        });
      } else {
        const first = model.firstIndex();
        if (applied >= first) {
          const index = first + BigInt(random.int(Number(applied - first) + 1));
          model.compact(index);
          peer.compact(batch, index);
        }
      }
      // Reads before the batch is written (the cache must serve the new entries) and after.
      const readSeed = random.nextUint32();
      assert.equal(
        readTrace(peer, new SeededRandom(readSeed)),
        readTrace(model, new SeededRandom(readSeed)),
        `SEED=${seed} step ${step} (batch pending)`,
      );
      if (random.chance(0.5)) engine.write(batch);
      else await engine.writeDurable(batch);
      batch.destroy();
      if (random.chance(0.1)) peer = PeerStorage.load(engine, REGION_ID, { cache }); // Restart.
      const again = random.nextUint32();
      assert.equal(
        readTrace(peer, new SeededRandom(again)),
        readTrace(model, new SeededRandom(again)),
        `SEED=${seed} step ${step}`,
      );
      assert.ok(peer.cachedEntryCount() <= cache.maxEntries + 6, "the cache stays bounded");
    }
  } catch (error) {
    console.error(`peer storage model test failed with SEED=${seed}`);
    throw error;
  }
}

Deno.test("PeerStorage reads exactly as MemoryStorage through random appends, commits, compactions and restarts (memory engine)", async () => {
  const engine = new MemoryEngine();
  await modelTest(engine, 2000);
});

Deno.test("PeerStorage reads exactly as MemoryStorage through random appends, commits, compactions and restarts (RocksDB)", async () => {
  const directory = await Deno.makeTempDir({ prefix: "basalt-peer-storage-model-" });
  const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
  try {
    await modelTest(engine, 600);
  } finally {
    engine.close();
    await Deno.remove(directory, { recursive: true });
  }
});

engineTest("a conf change's new peers are the membership a reloaded peer starts from", (engine) => {
  const s = bootstrap(engine);
  const next = regionState();
  next.region.peers = [
    ...next.region.peers.filter((p) => p.id !== 12n),
    { id: 14n, storeId: 4n, role: metapb.PeerRole.Voter },
  ];
  next.region.regionEpoch = { confVer: 4n, version: 1n };
  write(engine, (b) => s.setRegionState(b, next));
  assert.deepEqual(s.regionState(), next);
  const reloaded = PeerStorage.load(engine, REGION_ID).initialState().confState;
  assert.deepEqual([reloaded.voters, reloaded.learners], [[11n, 14n], [13n]]);
  assert.throws(() => write(engine, (b) => s.setRegionState(b, regionState(8n))), /for region 8/);
});
