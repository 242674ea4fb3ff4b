/**
 * Hibernation of idle regions (issue #12 item 3; TiKV's `hibernate-regions`): a region with no
 * traffic stops being ticked and stops heartbeating, and wakes on a proposal, a read, a message
 * or the store's leader check. A store's per-tick and per-round work is then proportional to its
 * awake peers, not to all of them (`PeerRegistry.awake`).
 *
 * The protocol (peer.ts `quietAfterTick`, `wake`, `sleep`; this module's `PeerRegistry`):
 *
 *  1. A leader sleeps after `leaderQuietTicks` (one election timeout) of ticks at which: its log
 *     did not grow, is all of its own term, committed and applied; every other peer (voters and
 *     learners) matches its last index, replicating, with no snapshot pending; no transfer,
 *     proposal, read, held ChangePeer, CompactLog or unapplied conf change waits; and every
 *     other peer acknowledged a heartbeat sent during that quiet window (so each knows the
 *     commit index is the last index). TiKV's leader waits for the same "all matched" state.
 *  2. A follower sleeps after `followerQuietTicks` ticks with no message at all, once it heard
 *     from its leader since it last woke, with a log of the current term, all of it committed and
 *     applied. The threshold lies between the heartbeat interval (an active leader keeps its
 *     followers awake) and the election timeout (a follower of a sleeping leader sleeps before
 *     its election timer could fire).
 *  3. Anything that reaches a peer wakes it: a message routed to it, a proposal, a read, a
 *     leadership transfer, a campaign; new and reopened peers start awake. Except a follower's
 *     acknowledgement (MsgHeartbeatResponse, accepted MsgAppendResponse) to a sleeping leader:
 *     it is stepped and the leader sleeps on, unless stepping it gave the leader work (a Ready:
 *     the follower needs entries). A woken leader's next tick may heartbeat every follower,
 *     waking them, and their answers would wake it again: under load, where answers come late,
 *     that cycle kept thousands of regions awake. An acknowledgement to an awake leader does
 *     not restart its quiet count.
 *  4. A follower that wakes restarts its election timer (Raft's `becomeFollower` in its term,
 *     same leader): time spent asleep counts for nothing, so it cannot campaign "because time
 *     passed". Unless the message that woke it came from its leader, it sends its leader one
 *     ReadIndex at its next tick (the probe): that wakes a sleeping leader, whose ReadIndex
 *     answer is a heartbeat round. A follower does not sleep again before it hears its leader.
 *  5. Leader check: every `HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS` election timeouts a store
 *     wakes one sleeping follower per store that leads some of its sleeping followers (in turn),
 *     which probes as in 4. When any peer here whose leader was on store S wins a pre-vote and
 *     campaigns (a quorum of its group has not heard from S for an election timeout while
 *     awake), the store wakes every sleeping follower led from S.
 *
 *     Why a won pre-vote and not a started one: a follower's election timer also fires when
 *     its leader is alive but late (a busy store, one cut link), and a store holds thousands of
 *     followers led from each other store. Waking all of them on every such timer made a
 *     loaded store's wake-ups feed themselves: thousands of probes and heartbeats slowed every
 *     store, which fired more timers (10,000 idle regions stayed awake). A pre-vote is granted
 *     only by peers that did not hear the leader for an election timeout, so one lone late
 *     follower wakes no one else; a dead store costs one more pre-vote round. A store cascades
 *     for S at most once a leader-check interval: followers woken by a cascade sleep again only
 *     after hearing their leader on S, so a second cascade within the interval could only wake
 *     followers that heard S alive since the first.
 *
 * Safety. Hibernation only withholds ticks; every message is still stepped into Raft, so Raft's
 * own safety (election safety, log matching, leader completeness) is untouched. What ticks guard
 * is time, and two things measure it:
 * - The leader lease (raft.ts: a leader serves reads locally while a quorum acknowledged a
 *   heartbeat sent less than `electionTimeout - margin` ticks ago; followers refuse votes for an
 *   election timeout after hearing a leader). A sleeping leader's clock stands still while real
 *   time passes, so a heartbeat acknowledged before it slept proves nothing about the present. A
 *   leader's lease is therefore void while it sleeps and, after it wakes, counts only heartbeats
 *   sent after the first tick since it woke (peer.ts `leaseOutlivesSleep`); the first read after
 *   waking goes through ReadIndex (a heartbeat round at the current time) like any read outside
 *   the lease. From its first post-wake tick on, the leader's clock runs at store-tick rate as
 *   before, and a follower's vote-refusal clock runs at most as fast (it only stands still while
 *   asleep), so the lease argument of raft.ts holds unchanged.
 * - Elections. A follower that sleeps keeps its vote-refusal clock where it stood (it refuses
 *   votes for longer in real time: safe, costs only liveness) and its election timer restarts on
 *   waking (4), so hibernation never makes a peer campaign or grant a vote earlier than Raft
 *   would.
 *
 * Liveness. A sleeping group wakes on any proposal or read at its leader. A client at a follower
 * wakes it (4), and its probe wakes the leader. If the leader's store died while the group slept,
 * the leader check (5) wakes one follower led from that store within
 * `HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS` election timeouts; its probe goes unanswered, its
 * election timer fires after one randomized election timeout (at most two), and its pre-vote
 * wakes the region's peers on the other stores, which grant once their own vote-refusal clocks
 * have run an election timeout while awake (the follower asks again at its next timeout). It
 * campaigns, and its store wakes every follower led from the dead store; each of those
 * campaigns within another randomized timeout or two, waking the region's other peers in turn
 * (and a peer elsewhere that wins a pre-vote against the dead store cascades on its own store
 * too). So a dead leader is replaced within the check interval plus a few election timeouts
 * (hibernate_test.ts measures it). A leader whose follower is down never sleeps (1), as in
 * TiKV; a restarted follower has no leader and campaigns, and its pre-vote wakes the leader,
 * which heartbeats.
 *
 * Assumption: a store's peers die together (a region-group worker that fails ends the process),
 * so one answering region proves its leader's store alive for the others led from it.
 *
 * @module
 */

import { HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS } from "../constants.ts";
import { CampaignType, MessageType, type Ready, StateRole } from "../raft/mod.ts";
import { assert } from "../util/assert.ts";
import type { Peer } from "./peer.ts";
import type { PeerConfig } from "./peer_config.ts";
import type { RaftEnvelope } from "./transport.ts";

/** Ticks a leader's region must stay quiet before it sleeps (one election timeout). */
export function leaderQuietTicks(config: PeerConfig): number {
  return config.electionTimeoutTicks;
}

/**
 * Ticks without a message before a follower sleeps: above the heartbeat interval, and below the
 * election timeout when the two leave room (half of it, rounded down).
 */
export function followerQuietTicks(config: PeerConfig): number {
  return Math.max(config.heartbeatIntervalTicks + 1, Math.floor(config.electionTimeoutTicks / 2));
}

/** Whether an envelope is a follower's acknowledgement, which does not keep a leader awake. */
export function isAcknowledgement(envelope: RaftEnvelope): boolean {
  const m = envelope.message;
  return m.msgType === MessageType.MsgHeartbeatResponse ||
    (m.msgType === MessageType.MsgAppendResponse && !m.reject);
}

/** Counters of a store's hibernation, for tests and metrics. */
export interface HibernationStats {
  /** Peer ticks so far (one per awake peer per store tick). */
  peerTicks: number;
  /** Times a peer went to sleep. */
  sleeps: number;
  /** Times a sleeping peer woke. */
  wakes: number;
  /** Leader-check probes started (one woken follower each). */
  leaderChecks: number;
  /** Times a campaign woke every follower led from a store. */
  cascades: number;
}

/**
 * A store's peers by region id, knowing which are awake. It is a `Map` so that every place that
 * adds or drops a peer (`set`, `delete`) keeps the awake set and the index of sleeping followers
 * right, including places added later: a peer missing from the awake set would never tick.
 *
 * It also records what changed since `takeTouched` was last called (peers woken, with a Ready or
 * added; regions dropped), so that the worker's mirror visits only those.
 */
export class PeerRegistry extends Map<bigint, Peer> {
  /** The peers ticked and asked for Readies. */
  readonly awake = new Set<Peer>();
  /** Sleeping followers by the store of their leader (what the leader check probes). */
  readonly #sleepingByLeaderStore = new Map<bigint, Set<Peer>>();
  readonly #indexedUnder = new Map<Peer, bigint>();
  /** Stores whose followers are all to be woken at the next tick (a campaign suspects them). */
  readonly #suspects = new Set<bigint>();
  /** The store tick of the last cascade for each store (at most one a leader-check interval). */
  readonly #cascadedAt = new Map<bigint, number>();
  #touched = new Set<Peer>();
  #dropped = new Set<bigint>();
  /** Peers whose Ready is in the round in flight: they do not sleep until it is done. */
  #inFlight: ReadonlySet<Peer> = new Set();
  #storeTicks = 0;
  readonly stats: HibernationStats = {
    peerTicks: 0,
    sleeps: 0,
    wakes: 0,
    leaderChecks: 0,
    cascades: 0,
  };

  constructor(readonly config: PeerConfig) {
    super();
  }

  override set(regionId: bigint, peer: Peer): this {
    const old = super.get(regionId);
    if (old !== undefined && old !== peer) this.#forget(old);
    super.set(regionId, peer);
    assert(!peer.asleep, "a peer joins the store awake", { regionId });
    this.awake.add(peer);
    this.#touched.add(peer);
    return this;
  }

  override delete(regionId: bigint): boolean {
    const old = super.get(regionId);
    if (old === undefined) return false;
    this.#forget(old);
    this.#dropped.add(regionId);
    return super.delete(regionId);
  }

  #forget(peer: Peer): void {
    this.awake.delete(peer);
    this.#unindex(peer);
    this.#touched.delete(peer);
  }

  /** An input for `peer` (module header, 3). */
  wake(peer: Peer, resetsQuiet = true): void {
    this.#touched.add(peer);
    if (!peer.wake(resetsQuiet)) return;
    this.stats.wakes++;
    this.awake.add(peer);
    this.#unindex(peer);
  }

  /** The peers of the round in flight (`round` sets them, and an empty set when it ends). */
  set inFlight(peers: ReadonlySet<Peer>) {
    this.#inFlight = peers;
  }

  /**
   * A Ready taken from `peer`: a campaign that won its pre-vote suspects its last leader's
   * store (5). A transfer's campaign suspects no one.
   */
  noteReady(peer: Peer, ready: Ready): void {
    this.#touched.add(peer);
    if (ready.softState?.raftState !== StateRole.Candidate) return;
    if (peer.raw.raft.lastCampaign !== CampaignType.Election) return;
    const suspect = peer.lastLeaderStoreId();
    if (suspect !== undefined && this.#sleepingByLeaderStore.has(suspect)) {
      this.#suspects.add(suspect);
    }
  }

  /**
   * One store tick: wakes the followers of suspected stores, ticks every awake peer, puts the
   * quiet ones to sleep, and runs the leader check when it is due.
   */
  tick(): void {
    this.#storeTicks++;
    const checkTicks = HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS * this.config.electionTimeoutTicks;
    for (const storeId of this.#suspects) {
      const last = this.#cascadedAt.get(storeId);
      if (last !== undefined && this.#storeTicks - last < checkTicks) continue;
      this.#cascadedAt.set(storeId, this.#storeTicks);
      this.#wakeAllLedFrom(storeId);
    }
    this.#suspects.clear();
    const sleepers: Peer[] = [];
    for (const peer of this.awake) {
      peer.tick();
      this.stats.peerTicks++;
      if (peer.quietAfterTick() && !this.#inFlight.has(peer) && !peer.raw.hasReady()) {
        sleepers.push(peer);
      }
    }
    for (const peer of sleepers) this.#sleep(peer);
    if (this.#storeTicks % checkTicks === 0) this.#checkLeaders();
  }

  #sleep(peer: Peer): void {
    peer.sleep();
    this.stats.sleeps++;
    this.awake.delete(peer);
    if (peer.isLeader()) return;
    const storeId = peer.lastLeaderStoreId();
    assert(storeId !== undefined, "a follower sleeps knowing its leader's store", {
      regionId: peer.regionId,
    });
    let sleeping = this.#sleepingByLeaderStore.get(storeId);
    if (sleeping === undefined) this.#sleepingByLeaderStore.set(storeId, sleeping = new Set());
    sleeping.add(peer);
    this.#indexedUnder.set(peer, storeId);
  }

  #unindex(peer: Peer): void {
    const storeId = this.#indexedUnder.get(peer);
    if (storeId === undefined) return;
    this.#indexedUnder.delete(peer);
    const sleeping = this.#sleepingByLeaderStore.get(storeId)!;
    sleeping.delete(peer);
    if (sleeping.size === 0) this.#sleepingByLeaderStore.delete(storeId);
  }

  /** Leader check (module header, 5): one sleeping follower per leading store wakes. */
  #checkLeaders(): void {
    for (const sleeping of [...this.#sleepingByLeaderStore.values()]) {
      const first = sleeping.values().next();
      if (first.done === true) continue;
      this.stats.leaderChecks++;
      this.wake(first.value);
    }
  }

  #wakeAllLedFrom(storeId: bigint): void {
    const sleeping = this.#sleepingByLeaderStore.get(storeId);
    if (sleeping === undefined) return;
    this.stats.cascades++;
    for (const peer of [...sleeping]) this.wake(peer);
  }

  /** Sleeping peers (every peer minus the awake ones). */
  get asleepCount(): number {
    return this.size - this.awake.size;
  }

  /** The peers touched and the regions dropped since the last call. */
  takeTouched(): { peers: Peer[]; droppedRegionIds: bigint[] } {
    const peers = [...this.#touched];
    const droppedRegionIds = [...this.#dropped];
    this.#touched = new Set();
    this.#dropped = new Set();
    return { peers, droppedRegionIds };
  }
}
