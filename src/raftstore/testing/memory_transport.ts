/**
 * An in-memory `Transport` for the multi-store harness, with message filters (TiKV's
 * test_raftstore idea): drop, delay by rounds, partition stores into sets, isolate a store.
 *
 * Delivery puts the envelope into the receiving store's inbox at once (it is handled in that
 * store's next round); a delayed envelope is delivered when `advanceRound()` has been called
 * `delayRounds` times. Filters are consulted in the order added; the first that does not say
 * "deliver" decides. Everything is deterministic: randomness only through a filter's own seeded
 * source.
 *
 * @module
 */

import { MessageType } from "../../raft/mod.ts";
import type { SeededRandom } from "../../util/random.ts";
import type { RaftEnvelope, Transport } from "../transport.ts";

/**
 * What a filter does with one envelope. "duplicate" delivers a copy at once and lets the
 * original go on through the remaining filters (a network that repeats a packet).
 */
export type FilterVerdict = "deliver" | "drop" | "duplicate" | { delayRounds: number };

/** A message filter. */
export interface Filter {
  readonly name: string;
  decide(envelope: RaftEnvelope): FilterVerdict;
}

/** Counters of the transport. */
export interface TransportStats {
  sent: number;
  delivered: number;
  dropped: number;
  delayed: number;
}

/** Most envelopes held back by delay filters; more are dropped (a test harness bound). */
export const MAX_DELAYED_ENVELOPES = 100_000;

/** Envelopes between stores of one process, through filters. */
export class MemoryTransport implements Transport {
  readonly #receivers = new Map<bigint, (envelope: RaftEnvelope) => void>();
  #filters: Filter[] = [];
  #delayed: { dueRound: number; envelope: RaftEnvelope }[] = [];
  #round = 0;
  readonly stats: TransportStats = { sent: 0, delivered: 0, dropped: 0, delayed: 0 };
  /** Copies delivered by "duplicate" verdicts (apart from `stats`, which tests compare whole). */
  duplicatedCount = 0;

  /** Store `storeId` receives through `receive` (replacing an earlier registration). */
  register(storeId: bigint, receive: (envelope: RaftEnvelope) => void): void {
    this.#receivers.set(storeId, receive);
  }

  /** Store `storeId` is down: envelopes to it are dropped. */
  unregister(storeId: bigint): void {
    this.#receivers.delete(storeId);
  }

  /** @inheritdoc */
  send(envelope: RaftEnvelope): void {
    this.stats.sent++;
    for (const filter of this.#filters) {
      const verdict = filter.decide(envelope);
      if (verdict === "deliver") continue;
      if (verdict === "duplicate") {
        this.duplicatedCount++;
        this.deliver(structuredClone(envelope));
        continue;
      }
      if (verdict === "drop" || this.#delayed.length >= MAX_DELAYED_ENVELOPES) {
        this.stats.dropped++;
        return;
      }
      this.stats.delayed++;
      this.#delayed.push({ dueRound: this.#round + verdict.delayRounds, envelope });
      return;
    }
    this.deliver(envelope);
  }

  private deliver(envelope: RaftEnvelope): void {
    const receive = this.#receivers.get(envelope.toPeer.storeId);
    if (receive === undefined) {
      this.stats.dropped++;
      return;
    }
    this.stats.delivered++;
    receive(envelope);
  }

  /** One transport round: delayed envelopes that are due are delivered, oldest first. */
  advanceRound(): void {
    this.#round++;
    if (this.#delayed.length === 0) return;
    const due = this.#delayed.filter((d) => d.dueRound <= this.#round);
    this.#delayed = this.#delayed.filter((d) => d.dueRound > this.#round);
    for (const d of due) this.deliver(d.envelope);
  }

  /** Envelopes held back by delay filters. */
  get delayedCount(): number {
    return this.#delayed.length;
  }

  /** Adds a filter; returns it, for `removeFilter`. */
  addFilter(filter: Filter): Filter {
    this.#filters.push(filter);
    return filter;
  }

  /** Removes a filter added earlier. */
  removeFilter(filter: Filter): void {
    this.#filters = this.#filters.filter((f) => f !== filter);
  }

  /** Removes every filter (heals partitions; delayed envelopes stay due). */
  clearFilters(): void {
    this.#filters = [];
  }
}

/** Drops envelopes between stores of different sets (a store in no set is cut off from all). */
export function partition(sets: readonly (readonly bigint[])[]): Filter {
  const setOf = new Map<bigint, number>();
  sets.forEach((set, i) => set.forEach((id) => setOf.set(id, i)));
  return {
    name: `partition ${sets.map((s) => `{${s.join(",")}}`).join(" ")}`,
    decide: (e) => {
      const a = setOf.get(e.fromPeer.storeId);
      const b = setOf.get(e.toPeer.storeId);
      return a !== undefined && a === b ? "deliver" : "drop";
    },
  };
}

/** Drops every envelope to or from `storeId`. */
export function isolate(storeId: bigint): Filter {
  return {
    name: `isolate store ${storeId}`,
    decide: (
      e,
    ) => (e.fromPeer.storeId === storeId || e.toPeer.storeId === storeId ? "drop" : "deliver"),
  };
}

/** Drops envelopes that match `predicate` (e.g. one message type, or one direction). */
export function dropWhen(name: string, predicate: (e: RaftEnvelope) => boolean): Filter {
  return { name, decide: (e) => (predicate(e) ? "drop" : "deliver") };
}

/** Delays envelopes that match `predicate` by `rounds` transport rounds. */
export function delayWhen(
  rounds: number,
  predicate: (e: RaftEnvelope) => boolean = () => true,
): Filter {
  return {
    name: `delay ${rounds} rounds`,
    decide: (e) => (predicate(e) ? { delayRounds: rounds } : "deliver"),
  };
}

/** Drops each envelope with probability `rate`, and delays some by up to `maxDelayRounds`. */
export function lossy(
  random: SeededRandom,
  opts: { dropRate: number; maxDelayRounds: number },
): Filter {
  return {
    name: `lossy drop ${opts.dropRate} delay ≤ ${opts.maxDelayRounds}`,
    decide: () => {
      if (random.chance(opts.dropRate)) return "drop";
      const rounds = random.int(opts.maxDelayRounds + 1);
      return rounds === 0 ? "deliver" : { delayRounds: rounds };
    },
  };
}

/** True for an envelope carrying `type`. */
export function isType(type: MessageType): (e: RaftEnvelope) => boolean {
  return (e) => !e.isTombstone && e.message.msgType === type;
}
