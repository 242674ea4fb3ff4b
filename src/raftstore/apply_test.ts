/**
 * Apply (apply.ts) and the command checks (command.ts): idempotence — an entry is applied once
 * however often it is handed over, and a replay over effects already in the engine ends where it
 * began (issue #10) — and the epoch checked again at apply (TiKV's `check_region_epoch`).
 */
import assert from "node:assert/strict";
import { metapb, raft_cmdpb } from "../../proto/mod.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { type Entry, newEntry, RaftAssertionError } from "../raft/mod.ts";
import { applyEntries } from "./apply.ts";
import {
  checkWriteRequests,
  decodeCommand,
  encodeCommand,
  type Modification,
  writeCommand,
} from "./command.ts";
import { applyStateKey } from "./keys.ts";
import { encodeRaftApplyState, PeerState, type RegionMeta } from "./local_state.ts";
import { PeerStorage, writeInitialPeerState } from "./peer_storage.ts";
import { LOCAL_CF } from "./region_state.ts";
import { Cluster, del, FIRST_REGION_ID, put, replacer } from "./testing/cluster.ts";

const text = (s: string) => new TextEncoder().encode(s);
const show = (value: unknown) => JSON.stringify(value, replacer);

const REGION: RegionMeta = {
  id: 3n,
  startKey: text("a"),
  endKey: text("n"),
  regionEpoch: { confVer: 1n, version: 4n },
  peers: [{ id: 31n, storeId: 1n, role: metapb.PeerRole.Voter }],
};
const SELF = REGION.peers[0]!;

/** A single-replica region's storage whose log holds `mods` as entries 6.., all committed. */
function storageWith(
  engine: MemoryEngine,
  commands: Uint8Array[],
): { storage: PeerStorage; entries: Entry[] } {
  const init = engine.newWriteBatch();
  writeInitialPeerState(init, { state: PeerState.Normal, region: REGION });
  engine.write(init);
  const storage = PeerStorage.load(engine, REGION.id);
  const entries = commands.map((data, i) => newEntry({ term: 6n, index: 6n + BigInt(i), data }));
  const batch = engine.newWriteBatch();
  storage.append(batch, entries);
  storage.setHardState(batch, { term: 6n, vote: SELF.id, commit: 5n + BigInt(entries.length) });
  engine.write(batch);
  return { storage, entries };
}

function write(mods: Modification[], epoch = REGION.regionEpoch): Uint8Array {
  return encodeCommand(writeCommand({ ...REGION, regionEpoch: epoch }, SELF, mods));
}

Deno.test("an entry handed to apply twice is applied once: the second time writes nothing and answers nobody", () => {
  const engine = new MemoryEngine();
  const { storage, entries } = storageWith(engine, [
    write([put("b", "1")]),
    write([put("b", "2")]),
  ]);
  const first = engine.newWriteBatch();
  const once = applyEntries({ storage, batch: first, selfPeerId: SELF.id }, entries);
  engine.write(first);
  assert.deepEqual(once.applied.map((a) => a.index), [6n, 7n]);
  assert.equal(new TextDecoder().decode(engine.get("default", text("b"))!), "2");
  const again = engine.newWriteBatch();
  const twice = applyEntries({ storage, batch: again, selfPeerId: SELF.id }, entries);
  assert.equal(again.count, 0);
  assert.deepEqual(twice.applied, []);
  assert.equal(storage.appliedIndex(), 7n);
});

Deno.test("a write whose epoch version changed before apply is refused at apply with EpochNotMatch and writes nothing", () => {
  const engine = new MemoryEngine();
  const stale = { confVer: 1n, version: 3n };
  const { storage, entries } = storageWith(engine, [write([put("c", "x")], stale)]);
  const batch = engine.newWriteBatch();
  const outcome = applyEntries({ storage, batch, selfPeerId: SELF.id }, entries);
  engine.write(batch);
  const result = outcome.applied[0]!.result;
  assert.ok(
    !result.ok && result.error.code === "EpochNotMatch" && result.error.atApply,
    show(result),
  );
  assert.equal(engine.get("default", text("c")), null);
  assert.equal(storage.appliedIndex(), 6n, "a refused entry still counts as applied");
});

Deno.test("a write proposed around the leader's check with a stale epoch is refused on every replica, and the log moves on (seed 31)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 31 });
  const leader = c.leader()!;
  const region = leader.region();
  const cmd = writeCommand(
    { ...region, regionEpoch: { ...region.regionEpoch, version: 0n } },
    leader.meta,
    [put("k", "stale")],
  );
  // As if it passed the propose-time check just before the epoch changed.
  assert.equal(leader.raw.propose(encodeCommand(cmd)), undefined);
  const index = leader.raw.raft.log.lastIndex();
  await c.waitUntil(
    "every replica applied the stale entry",
    () => c.peers().every((p) => p.appliedIndex() >= index),
  );
  for (const id of c.storeIds) assert.equal(c.valueOn(id, "k"), undefined, `store ${id}`);
  assert.ok((await c.put("k", "fresh")).ok);
});

Deno.test("a replica whose apply state is rolled back replays its log over the effects already applied and ends with the same data (seed 32)", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 32,
    config: { raftLogGcCountLimit: 15, raftLogGcCheckTicks: 2 },
  });
  for (let i = 0; i < 40; i++) {
    assert.ok((await c.put(`k${i % 7}`, `v${i}`)).ok);
    if (i % 5 === 0) {
      assert.ok(
        (await c.propose(
          c.leader()!.meta.storeId,
          writeCommand(c.leader()!.region(), c.leader()!.meta, [del(`k${i % 3}`)]),
        )).ok,
      );
    }
  }
  await c.tick(5);
  const follower = c.peers().find((p) => !p.isLeader())!;
  const storeId = follower.meta.storeId;
  const before = follower.storage.applyState();
  assert.ok(
    before.truncatedState.index > 5n,
    "the log was compacted, so the replay crosses CompactLogs",
  );
  c.crash(storeId);
  // A crash between the effects and the state that records them (which one WriteBatch makes
  // impossible; this forces it): the data stays, the applied index goes back to the truncated one.
  c.engine(storeId).put(
    LOCAL_CF,
    applyStateKey(FIRST_REGION_ID),
    encodeRaftApplyState({
      ...before,
      appliedIndex: before.truncatedState.index,
    }),
  );
  c.restart(storeId);
  const replayed = c.store(storeId).peer(FIRST_REGION_ID)!;
  assert.equal(replayed.appliedIndex(), before.truncatedState.index);
  await c.waitUntil(
    "the replay reached the old applied index",
    () => replayed.appliedIndex() >= before.appliedIndex,
  );
  const other = c.peers().find((p) => p.meta.storeId !== storeId)!.meta.storeId;
  for (let k = 0; k < 7; k++) {
    assert.equal(c.valueOn(storeId, `k${k}`), c.valueOn(other, `k${k}`), `k${k}`);
  }
});

Deno.test("write checks: keys outside the region, reversed ranges, reads in the log and the raftstore's own records are refused", () => {
  const cmd = (mods: Modification[]) => writeCommand(REGION, SELF, mods);
  const code = (mods: Modification[]) => checkWriteRequests(cmd(mods), REGION)?.code ?? "ok";
  assert.equal(code([put("b", "1")]), "ok");
  assert.equal(code([put("z", "1")]), "KeyNotInRegion");
  assert.equal(code([put("", "1")]), "KeyNotInRegion");
  assert.equal(
    code([{ type: "deleteRange", cf: "default", startKey: text("c"), endKey: text("b") }]),
    "InvalidCommand",
  );
  assert.equal(
    code([{ type: "deleteRange", cf: "default", startKey: text("b"), endKey: text("o") }]),
    "KeyNotInRegion",
  );
  assert.equal(
    code([{ type: "deleteRange", cf: "default", startKey: text("b"), endKey: text("n") }]),
    "ok",
  );
  assert.equal(
    code([{ type: "put", cf: "raft", key: new Uint8Array([1, 2, 0]), value: text("x") }]),
    "InvalidCommand",
  );
  // A range in CF raft whose ends miss the local records but that spans them.
  const span = { startKey: new Uint8Array([1, 0]), endKey: new Uint8Array([1, 0x10]) };
  assert.equal(code([{ type: "deleteRange", cf: "raft", ...span }]), "InvalidCommand");
  assert.equal(
    code([{
      type: "deleteRange",
      cf: "raft",
      startKey: new Uint8Array([1, 0x74]),
      endKey: new Uint8Array(0),
    }]),
    "InvalidCommand",
  );
  const notifyOnly = {
    ...cmd([]),
    requests: [{
      cmdType: raft_cmdpb.CmdType.DeleteRange,
      deleteRange: { startKey: text("b"), endKey: text("c"), notifyOnly: true },
    }],
  };
  assert.equal(checkWriteRequests(notifyOnly, REGION)?.code, "InvalidCommand");
  assert.equal(
    code([{ type: "put", cf: "raft", key: new Uint8Array([1, 0x74, 0]), value: text("x") }]),
    "ok",
  );
  const read = {
    ...cmd([]),
    requests: [{ cmdType: raft_cmdpb.CmdType.Get, get: { key: text("b") } }],
  };
  assert.equal(checkWriteRequests(read, REGION)?.code, "InvalidCommand");
});

Deno.test("log entry data that is not a RaftCmdRequest fails an assertion naming it", () => {
  assert.throws(() => decodeCommand(new Uint8Array([0xff, 0xff, 0xff])), (e: unknown) => {
    assert.ok(e instanceof RaftAssertionError);
    assert.match(e.message, /not a RaftCmdRequest/);
    return true;
  });
});

Deno.test("a DeleteRange with an empty end key deletes to the region's end and no further", () => {
  const engine = new MemoryEngine();
  for (const k of ["b", "m", "n", "z"]) engine.put("default", text(k), text("v"));
  const { storage, entries } = storageWith(engine, [
    write([{ type: "deleteRange", cf: "default", startKey: text("b"), endKey: new Uint8Array(0) }]),
  ]);
  const batch = engine.newWriteBatch();
  const outcome = applyEntries({ storage, batch, selfPeerId: SELF.id }, entries);
  engine.write(batch);
  assert.ok(outcome.applied[0]!.result.ok, show(outcome.applied[0]));
  const left = ["b", "m", "n", "z"].filter((k) => engine.get("default", text(k)) !== null);
  assert.deepEqual(left, ["n", "z"]);
});
