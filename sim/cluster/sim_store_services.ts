/**
 * The command layer of a real store over a harness `Store` (the part of
 * src/server/region_worker.ts and worker_raftstore.ts that glues the two, redone for the
 * simulator): the same `StoreServices` a region-group worker builds — the transactional and raw
 * stores of src/server (latches, concurrency manager, lock manager) over the store's engine,
 * every write through `RaftWritePath` (a proposal to the region's peer, settled at apply) — so
 * a kvproto request runs through `runCommand` and the real command handlers, exactly as behind
 * the gRPC edge. What differs is only what the worker's event loop did:
 *
 * - `regions` mirrors the store's initialized peers after every round (the worker's
 *   `afterRound` mirror);
 * - the gate lets a request run when the peer holds its lease, else after a ReadIndex round
 *   (the worker's `gate`);
 * - max_ts sync (TiKV's, src/server/max_ts_sync.ts — the worker's own rule and bookkeeping): a
 *   peer that became leader, or whose range grew by a merge while leading, takes async-commit
 *   and 1PC prewrites only after max_ts was raised to a PD timestamp, asked for at the next
 *   round and arriving then (with several PD members: when the leader's answer does — or never,
 *   and it is asked again at the next round). The test-only bug `skipMaxTsSync` leaves max_ts
 *   where it was.
 *
 * One instance per store incarnation: a crash throws it away (latches, memory locks, max_ts are
 * memory), and a restart builds a new one whose max_ts starts at a fresh PD timestamp.
 *
 * @module
 */

import { RaftWritePath } from "../../src/raftstore/write_path.ts";
import type { Store } from "../../src/raftstore/store.ts";
import type { Failure } from "../../src/server/failure.ts";
import { newRawStore } from "../../src/server/raw/store.ts";
import type { Region } from "../../src/server/region.ts";
import type { StoreServices } from "../../src/server/services.ts";
import { MaxTsSync } from "../../src/server/max_ts_sync.ts";
import { newTxnStore } from "../../src/server/txn/store.ts";
import { readGate, regionOfPeer } from "../../src/server/worker_raftstore.ts";
import type { SimClock } from "./sim_clock.ts";
import type { SimTso } from "./sim_pd.ts";

/** Test-only bugs of the store glue. */
export interface StoreGlueBugs {
  /** A new leader takes async-commit and 1PC prewrites without raising max_ts first. */
  skipMaxTsSync?: boolean;
}

/** `StoreServices` over one incarnation of a harness store (module header). */
export class SimStoreServices {
  readonly services: StoreServices;
  readonly #regions = new Map<bigint, Region>();
  readonly #maxTsSync = new MaxTsSync();
  /** Timestamps owed to `#maxTsSync`, to ask at the next mirror: region and term, in order. */
  #owed: { regionId: bigint; term: bigint }[] = [];

  constructor(
    readonly store: Store,
    parts: { clock: SimClock; tso: SimTso; bugs?: StoreGlueBugs },
  ) {
    const writes = new RaftWritePath(store, () => {});
    const engine = store.engine;
    const skipSync = parts.bugs?.skipMaxTsSync === true;
    this.services = {
      regions: this.#regions,
      raw: newRawStore(engine, { syncLog: true, writes }),
      txn: newTxnStore(engine, {
        syncLog: true,
        latestTs: parts.tso.startTs(),
        timer: parts.clock.lockWaitTimer(),
        writes,
      }),
      gate: (region) => this.#gate(region),
      maxTsSynced: skipSync ? undefined : (regionId) => this.#maxTsSync.synced(regionId),
    };
    this.mirror(parts.tso);
  }

  /**
   * After a round: the PD timestamps owed since the last mirror are asked for (the worker's
   * "needMaxTs"), max_ts rising to each as it arrives; then `regions` follows the store's peers,
   * each seen by `MaxTsSync` (led anew or grown by a merge: a timestamp is owed).
   */
  mirror(tso: SimTso): void {
    const owed = this.#owed;
    this.#owed = [];
    for (const ask of owed) this.#ask(tso, ask);
    const live = new Set<bigint>();
    for (const peer of this.store.peers()) {
      if (peer.destroyed || !peer.isInitialized()) continue;
      live.add(peer.regionId);
      const meta = peer.region();
      const own = meta.peers.find((p) => p.id === peer.meta.id) ?? peer.meta;
      const leading = peer.isLeader();
      const term = peer.raw.raft.term;
      const view = { leading, term, startKey: meta.startKey, endKey: meta.endKey };
      if (this.#maxTsSync.observe(peer.regionId, view)) {
        this.#owed.push({ regionId: peer.regionId, term });
      }
      this.#regions.set(peer.regionId, { ...regionOfPeer(meta, own), leading, term });
    }
    for (const id of [...this.#regions.keys()]) {
      if (!live.has(id)) {
        this.#regions.delete(id);
        this.#maxTsSync.forget(id);
      }
    }
  }

  /**
   * Asks PD a timestamp owed to region `regionId` led in `term`, unless it is led no more:
   * max_ts rises to the answer, then `MaxTsSync` hears it; no answer: asked again next round.
   */
  #ask(tso: SimTso, ask: { regionId: bigint; term: bigint }): void {
    const peer = this.store.peer(ask.regionId);
    if (peer?.isLeader() !== true || peer.raw.raft.term !== ask.term) return;
    const ts = tso.ask(`store ${this.store.storeId}`);
    if (typeof ts === "bigint") {
      this.services.txn.concurrency.updateMaxTs(ts);
      this.#maxTsSync.fetched(ask.regionId, ask.term);
      return;
    }
    ts.then((arrived) => {
      if (arrived === null) {
        this.#owed.push(ask);
        return;
      }
      this.services.txn.concurrency.updateMaxTs(arrived);
      this.#maxTsSync.fetched(ask.regionId, ask.term);
    });
  }

  /** See `StoreServices.gate` (the worker's: the lease, else a ReadIndex round). */
  #gate(region: Region): Promise<Failure | null> | null {
    return readGate(this.store, region.id);
  }
}
