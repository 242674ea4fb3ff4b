/**
 * Admin actions during a cluster-simulator run, one at a time, as PD would send them: first
 * what repair needs (PD's replica checker — promote a learner, add a replica where a region
 * has too few on stores still alive, remove a voter too many, preferring one on the store lost
 * for good), then, while faults last, random actions — a split at a random key, a merge of two
 * neighbours, a peer moved to another store (add learner; the repair rules then promote it and
 * remove a voter), a leader transfer. Every proposal goes through the region's current leader
 * with fresh ids; the answer (or its absence by a deadline) goes to the trace.
 *
 * With the real PD (`pd`, sim_placement_driver.ts) this oracle neither repairs nor balances:
 * PD's checkers and schedulers do. Its random actions then go to PD as an administrator's
 * would (`ctl operator add` merge-region, add-peer, transfer-leader; PD's replica checker
 * removes the replica an add-peer made one too many), and a split asks PD for its ids
 * (AskBatchSplit) and reports what it made (ReportBatchSplit), as a store's split does.
 *
 * @module
 */

import { metapb } from "../../proto/mod.ts";
import { ConfChangeType } from "../../src/raft/mod.ts";
import type { CmdResult } from "../../src/raftstore/apply.ts";
import {
  batchSplitCommand,
  changePeerCommand,
  keyInRegion,
  prepareMergeCommand,
  type RaftCmd,
  sameStores,
} from "../../src/raftstore/command.ts";
import { describeRegionError } from "../../src/raftstore/errors.ts";
import {
  type PeerMeta,
  regionFromProto,
  type RegionMeta,
} from "../../src/raftstore/local_state.ts";
import type { Peer } from "../../src/raftstore/peer.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { compareBytes, utf8 } from "../../src/util/bytes.ts";
import type { SeededRandom } from "../../src/util/random.ts";
import { describeRange, regionMap } from "./region_map.ts";
import type { SimPlacementDriver, SplitIds } from "./sim_placement_driver.ts";

/** Ticks an admin proposal may wait for its answer before the scheduler moves on. */
export const ADMIN_DEADLINE_TICKS = 60;
/** Split points are single letters (the register keys are among them). */
const SPLIT_ALPHABET = "abcdefghijklm".split("");

/** Counts of admin actions answered ok, by kind. */
export interface SchedulerStats {
  splits: number;
  merges: number;
  confChanges: number;
  transfers: number;
  refused: number;
}

/** One admin action at a time (module header). */
export class Scheduler {
  readonly stats: SchedulerStats = {
    splits: 0,
    merges: 0,
    confChanges: 0,
    transfers: 0,
    refused: 0,
  };
  #busy:
    | {
      what: string;
      kind: keyof SchedulerStats;
      handle: { result: CmdResult | undefined };
      until: number;
      onOk?: (result: CmdResult & { ok: true }) => void;
    }
    | undefined;
  /**
   * A split waiting for its ids from PD (several members: they arrive once a new id window
   * committed), until a deadline; then what arrived, for the next step to carry out.
   */
  #asking:
    | {
      leader: Peer;
      version: bigint;
      key: string;
      until: number;
      ids: SplitIds | string | undefined;
    }
    | undefined;
  /** The store lost for good, if any: repair moves its replicas away. */
  lostStore: bigint | undefined;

  constructor(
    readonly c: Cluster,
    readonly random: SeededRandom,
    readonly opts: {
      voters: number;
      trace: (line: string) => void;
      /** The real PD: it repairs and balances; admin actions go through it. */
      pd?: SimPlacementDriver;
    },
  ) {}

  /** Once per tick: settles the action under way, or starts the next (random ones if asked). */
  step(randomActions: { chance: number } | undefined): void {
    if (this.#asking !== undefined) return this.#splitWithIds();
    if (this.#busy !== undefined) {
      const { what, kind, handle, until, onOk } = this.#busy;
      const r = handle.result;
      if (r === undefined && this.c.ticks < until) return;
      this.#busy = undefined;
      if (r?.ok === true) {
        this.stats[kind]++;
        onOk?.(r);
      } else this.stats.refused++;
      this.opts.trace(
        `admin ${what}: ${
          r === undefined
            ? "no answer in time"
            : r.ok
            ? `ok (index ${r.index})`
            : describeRegionError(r.error)
        }`,
      );
      return;
    }
    const regions = regionMap(this.c);
    if (this.opts.pd === undefined) {
      for (const region of regions) {
        if (this.repair(region)) return;
      }
    }
    if (randomActions !== undefined && this.random.chance(randomActions.chance)) {
      this.randomAction(regions);
    }
  }

  private usableStores(): bigint[] {
    return this.c.storeIds.filter((id) => id !== this.lostStore);
  }

  /** PD's replica checker, one step: returns true if it started something. */
  private repair(region: RegionMeta): boolean {
    const leader = this.c.leader(region.id);
    if (leader === undefined || leader.isMerging()) return false;
    const view = leader.region();
    const learner = view.peers.find((p) => p.role === metapb.PeerRole.Learner);
    if (learner !== undefined) {
      return learner.storeId === this.lostStore
        ? this.changePeer(leader, ConfChangeType.RemoveNode, learner)
        : this.changePeer(leader, ConfChangeType.AddNode, {
          ...learner,
          role: metapb.PeerRole.Voter,
        });
    }
    const alive = view.peers.filter((p) => p.storeId !== this.lostStore);
    if (alive.length < this.opts.voters) {
      const free = this.usableStores().filter((s) => !view.peers.some((p) => p.storeId === s));
      const up = free.filter((s) => this.c.isUp(s));
      const to = up.length > 0
        ? this.random.pick(up)
        : free.length > 0
        ? this.random.pick(free)
        : undefined;
      if (to === undefined) return false;
      return this.addLearner(leader, to);
    }
    if (view.peers.length > this.opts.voters) {
      const lost = view.peers.find((p) => p.storeId === this.lostStore);
      const others = view.peers.filter((p) => p.id !== leader.meta.id);
      const victim = lost ?? this.random.pick(others);
      return this.changePeer(leader, ConfChangeType.RemoveNode, victim);
    }
    return false;
  }

  private addLearner(leader: Peer, storeId: bigint): boolean {
    const peer = { id: this.c.allocPeerId(), storeId, role: metapb.PeerRole.Learner };
    return this.changePeer(leader, ConfChangeType.AddLearnerNode, peer);
  }

  private changePeer(leader: Peer, changeType: ConfChangeType, peer: PeerMeta): boolean {
    const what = `region ${leader.regionId} ${
      ConfChangeType[changeType]
    } peer ${peer.id} on store ${peer.storeId}`;
    return this.start(leader, {
      what,
      kind: "confChanges",
      cmd: changePeerCommand(leader, { changeType, peer }),
    });
  }

  private start(
    leader: Peer,
    action: {
      what: string;
      kind: keyof SchedulerStats;
      cmd: RaftCmd;
      onOk?: (result: CmdResult & { ok: true }) => void;
    },
  ): boolean {
    const handle = this.c.startPropose(leader.meta.storeId, action.cmd);
    this.#busy = {
      what: action.what,
      kind: action.kind,
      handle,
      until: this.c.ticks + ADMIN_DEADLINE_TICKS,
      onOk: action.onOk,
    };
    this.opts.trace(`admin start ${action.what} via store ${leader.meta.storeId}`);
    return true;
  }

  private randomAction(regions: RegionMeta[]): void {
    const region = this.random.pick(regions);
    const leader = this.c.leader(region.id);
    if (leader === undefined) return;
    const roll = this.random.int(100);
    if (this.opts.pd !== undefined) return this.pdAction(regions, leader, roll);
    if (roll < 40) this.split(leader);
    else if (roll < 65) this.merge(regions, leader);
    else if (roll < 85) {
      const view = leader.region();
      const free = this.usableStores().filter((s) => !view.peers.some((p) => p.storeId === s));
      if (free.length > 0) this.addLearner(leader, this.random.pick(free));
    } else {
      const voters = leader.region().peers.filter((p) =>
        p.id !== leader.meta.id && p.role === metapb.PeerRole.Voter && p.storeId !== this.lostStore
      );
      if (voters.length === 0) return;
      const to = this.random.pick(voters);
      this.c.store(leader.meta.storeId).transferLeader(region.id, to.id);
      this.stats.transfers++;
      this.opts.trace(
        `admin transfer leader of region ${region.id} to peer ${to.id} (store ${to.storeId})`,
      );
    }
  }

  /** A random action asked of the real PD (or a split with its ids); see the module header. */
  private pdAction(regions: RegionMeta[], leader: Peer, roll: number): void {
    const pd = this.opts.pd!;
    const regionId = leader.regionId;
    if (roll < 40) return this.split(leader);
    if (roll < 65) {
      const i = regions.findIndex((r) => r.id === regionId);
      const neighbours = [regions[i - 1], regions[i + 1]].filter((r) => r !== undefined);
      if (neighbours.length === 0) return;
      const target = this.random.pick(neighbours);
      pd.addOperator({ action: "merge-region", regionId, targetRegionId: target.id });
      return;
    }
    const view = leader.region();
    if (roll < 85) {
      const free = this.usableStores().filter((s) => !view.peers.some((p) => p.storeId === s));
      if (free.length === 0) return;
      pd.addOperator({ action: "add-peer", regionId, storeId: this.random.pick(free) });
      return;
    }
    const voters = view.peers.filter((p) =>
      p.id !== leader.meta.id && p.role === metapb.PeerRole.Voter && p.storeId !== this.lostStore
    );
    if (voters.length === 0) return;
    const to = this.random.pick(voters);
    pd.addOperator({ action: "transfer-leader", regionId, storeId: to.storeId });
  }

  private split(leader: Peer): void {
    const view = leader.region();
    const key = this.random.pick(SPLIT_ALPHABET);
    const bytes = utf8(key);
    if (!keyInRegion(bytes, view) || compareBytes(bytes, view.startKey) === 0) return;
    const pd = this.opts.pd;
    const ids = pd === undefined
      ? {
        newRegionId: this.c.allocPeerId(),
        newPeerIds: view.peers.map(() => this.c.allocPeerId()),
      }
      : pd.askSplitIds(view);
    if (ids instanceof Promise) {
      const asking = {
        leader,
        version: view.regionEpoch.version,
        key,
        until: this.c.ticks + ADMIN_DEADLINE_TICKS,
        ids: undefined as SplitIds | string | undefined,
      };
      this.#asking = asking;
      ids.then((arrived) => asking.ids = arrived);
      return;
    }
    this.#splitWith(leader, key, ids);
  }

  /** A split whose ids were asked of PD: carried out once they arrived, if still current. */
  #splitWithIds(): void {
    const asking = this.#asking!;
    if (asking.ids === undefined && this.c.ticks < asking.until) return;
    this.#asking = undefined;
    const { leader, key, ids } = asking;
    const regionId = leader.regionId;
    if (ids === undefined) {
      this.stats.refused++;
      return this.opts.trace(`admin split region ${regionId}: no ids from PD in time`);
    }
    const current = leader.isLeader() && !leader.destroyed &&
      leader.region().regionEpoch.version === asking.version;
    if (typeof ids !== "string" && !current) {
      this.stats.refused++;
      return this.opts.trace(`admin split region ${regionId}: moved on before PD's ids came`);
    }
    this.#splitWith(leader, key, ids);
  }

  #splitWith(leader: Peer, key: string, ids: SplitIds | string): void {
    const view = leader.region();
    const bytes = utf8(key);
    const pd = this.opts.pd;
    if (typeof ids === "string") {
      this.stats.refused++;
      this.opts.trace(`admin split region ${view.id}: no ids from PD (${ids})`);
      return;
    }
    const spec = { splitKey: bytes, ...ids };
    const rightDerive = this.random.chance(0.5);
    this.start(leader, {
      what:
        `split region ${view.id} ${describeRange(view)} at ${key} into region ${spec.newRegionId}` +
        (rightDerive ? " (right derives)" : ""),
      kind: "splits",
      cmd: batchSplitCommand(leader, [spec], rightDerive),
      onOk: pd === undefined ? undefined : (result) => {
        const made = result.adminResponse?.splits?.regions ?? [];
        pd!.reportSplit(made.map(regionFromProto), leader.meta.storeId);
      },
    });
  }

  private merge(regions: RegionMeta[], leader: Peer): void {
    const i = regions.findIndex((r) => r.id === leader.regionId);
    const neighbours = [regions[i - 1], regions[i + 1]].filter((r) => r !== undefined);
    if (neighbours.length === 0) return;
    const other = this.random.pick(neighbours);
    const otherLeader = this.c.leader(other.id);
    if (otherLeader === undefined) return;
    const target = otherLeader.region();
    if (!sameStores(leader.region(), target)) return;
    this.start(leader, {
      what: `merge region ${leader.regionId} ${
        describeRange(leader.region())
      } into region ${target.id} ${describeRange(target)}`,
      kind: "merges",
      cmd: prepareMergeCommand(leader, { minIndex: leader.mergeMinIndex(), target }),
    });
  }
}
