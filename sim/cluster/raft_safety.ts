/**
 * Raft safety per region, watched from outside the stores after every round (the cluster
 * simulator's counterpart of sim/safety_checker.ts), and replica consistency at the end.
 *
 * - Election Safety (Raft §5.2): at most one leader per term per region — every leader seen is
 *   recorded by (region, term).
 * - State Machine Safety (Raft §5.4.3): every replica applies the same entry at an index — each
 *   entry a replica has applied since the last look is read back from its log (while the log
 *   still holds it) and its (term, type, data digest) compared with what any other replica
 *   applied at that (region, index). Entries that reach a replica by snapshot, or that were
 *   compacted before the look, are not seen; every other applied entry is.
 * - Replica consistency (TiKV's consistency check): at the end, the replicas of a region that
 *   applied as far as its leader hold the same data in the region's range, in every data CF.
 *
 * @module
 */

import type { Entry } from "../../src/raft/mod.ts";
import { keyInRegion } from "../../src/raftstore/command.ts";
import type { Peer } from "../../src/raftstore/peer.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { toHex } from "../../src/util/bytes.ts";
import { regionMap } from "./region_map.ts";

/** Watches every replica of every region (module header). */
export class RegionSafetyChecker {
  readonly #leaders = new Map<string, bigint>();
  readonly #applied = new Map<string, string>();
  readonly #seenUpTo = new Map<string, bigint>();
  /** The first violation seen, if any. */
  violation: string | undefined;
  /** Leader terms and applied entries compared so far. */
  readonly stats = { leaderTerms: 0, entriesCompared: 0 };

  /** Looks at every live replica; returns new leader lines for the trace. */
  observe(c: Cluster): string[] {
    const lines: string[] = [];
    for (const storeId of c.storeIds) {
      if (!c.isUp(storeId)) continue;
      for (const peer of c.store(storeId).peers()) {
        if (peer.destroyed) continue;
        if (peer.isLeader()) this.noteLeader(peer, lines);
        this.noteApplied(peer);
      }
    }
    return lines;
  }

  private noteLeader(peer: Peer, lines: string[]): void {
    const term = peer.raw.raft.term;
    const key = `${peer.regionId}/${term}`;
    const known = this.#leaders.get(key);
    if (known === undefined) {
      this.#leaders.set(key, peer.meta.id);
      this.stats.leaderTerms++;
      lines.push(`leader region ${peer.regionId} term ${term}: peer ${peer.meta.id}`);
    } else if (known !== peer.meta.id) {
      this.violation ??= `Election Safety: region ${peer.regionId} term ${term} has two ` +
        `leaders, peer ${known} and peer ${peer.meta.id} (store ${peer.meta.storeId})`;
    }
  }

  private noteApplied(peer: Peer): void {
    const who = `${peer.meta.storeId}/${peer.meta.id}`;
    const applied = peer.appliedIndex();
    let last = this.#seenUpTo.get(who) ?? 0n;
    if (applied < last) last = applied; // Restarted: it replays, and is compared again.
    const storage = peer.storage;
    const lo = last + 1n > storage.firstIndex() ? last + 1n : storage.firstIndex();
    if (lo <= applied && applied <= storage.lastIndex()) {
      for (const e of storage.entries({ lo, hi: applied + 1n })) this.compare(peer, e);
    }
    this.#seenUpTo.set(who, applied);
  }

  private compare(peer: Peer, e: Entry): void {
    const key = `${peer.regionId}/${e.index}`;
    const what = `term ${e.term} type ${e.entryType} data ${digest(e.data)}`;
    const known = this.#applied.get(key);
    this.stats.entriesCompared++;
    if (known === undefined) {
      this.#applied.set(key, what);
    } else if (known !== what) {
      this.violation ??= `State Machine Safety: region ${peer.regionId} index ${e.index}: ` +
        `peer ${peer.meta.id} (store ${peer.meta.storeId}) applied ${what}, another replica ${known}`;
    }
  }
}

/**
 * Replica consistency (module header): a sentence naming the region and the stores whose data
 * differ, or undefined when every region's caught-up replicas agree.
 */
export function checkReplicaConsistency(c: Cluster): string | undefined {
  for (const region of regionMap(c)) {
    const leader = c.leader(region.id);
    if (leader === undefined) continue;
    const applied = leader.appliedIndex();
    const range = leader.region();
    let first: { storeId: bigint; data: string } | undefined;
    for (const peer of c.peers(region.id)) {
      if (!peer.isInitialized() || peer.appliedIndex() !== applied) continue;
      const data = dataInRange(c, peer.meta.storeId, range);
      if (first === undefined) first = { storeId: peer.meta.storeId, data };
      else if (first.data !== data) {
        return `Replica consistency: region ${region.id} at applied index ${applied}: store ` +
          `${first.storeId} holds {${first.data}} but store ${peer.meta.storeId} holds {${data}}`;
      }
    }
  }
  return undefined;
}

function dataInRange(
  c: Cluster,
  storeId: bigint,
  region: Parameters<typeof keyInRegion>[1],
): string {
  const parts: string[] = [];
  const engine = c.engine(storeId);
  for (const cf of ["default", "lock", "write"] as const) {
    using it = engine.iterator(cf);
    for (it.seekToFirst(); it.valid(); it.next()) {
      if (keyInRegion(it.key(), region)) {
        parts.push(`${cf}:${toHex(it.key())}=${toHex(it.value())}`);
      }
    }
  }
  return parts.join(" ");
}

/** FNV-1a (32 bits) of `bytes`, as 8 hex digits. */
function digest(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return `${bytes.length}:${h.toString(16).padStart(8, "0")}`;
}
