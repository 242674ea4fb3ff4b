/**
 * Network faults for the cluster simulator, as `MemoryTransport` filters
 * (src/raftstore/testing/memory_transport.ts): a rough network (loss, duplication, delay — hence
 * reordering), and cuts — symmetric partitions, an isolated store, one-way cuts, and links that
 * flap. Each filter decides from the envelope, the transport round and the run's seeded random
 * source only, so a run replays from its seed.
 *
 * @module
 */

import type { Filter } from "../../src/raftstore/testing/memory_transport.ts";
import { partition } from "../../src/raftstore/testing/memory_transport.ts";
import type { SeededRandom } from "../../src/util/random.ts";

/** Loss, duplication and delay of every message, each drawn per message. */
export function roughNetwork(
  random: SeededRandom,
  opts: { dropRate: number; duplicateRate: number; maxDelayRounds: number },
): Filter {
  return {
    name:
      `rough network (drop ${opts.dropRate}, dup ${opts.duplicateRate}, delay ≤ ${opts.maxDelayRounds})`,
    decide: () => {
      if (random.chance(opts.dropRate)) return "drop";
      if (random.chance(opts.duplicateRate)) return "duplicate";
      const rounds = random.int(opts.maxDelayRounds + 1);
      return rounds === 0 ? "deliver" : { delayRounds: rounds };
    },
  };
}

/** Drops messages from any store of `from` to any store of `to` (the other way still works). */
export function oneWayCut(from: readonly bigint[], to: readonly bigint[]): Filter {
  return {
    name: `one-way cut {${from.join(",")}} -> {${to.join(",")}}`,
    decide: (e) =>
      from.includes(e.fromPeer.storeId) && to.includes(e.toPeer.storeId) ? "drop" : "deliver",
  };
}

/**
 * A link that is cut for `periodRounds` transport rounds, then up for as many, and so on:
 * messages between `a` and the stores of `others` are dropped while it is down.
 */
export function flappingLink(
  opts: { a: bigint; others: readonly bigint[]; periodRounds: number; round: () => number },
): Filter {
  return {
    name: `flapping link ${opts.a} <-> {${
      opts.others.join(",")
    }} every ${opts.periodRounds} rounds`,
    decide: (e) => {
      const down = Math.floor(opts.round() / opts.periodRounds) % 2 === 0;
      if (!down) return "deliver";
      const touches = (x: bigint, y: bigint) => x === opts.a && opts.others.includes(y);
      return touches(e.fromPeer.storeId, e.toPeer.storeId) ||
          touches(e.toPeer.storeId, e.fromPeer.storeId)
        ? "drop"
        : "deliver";
    },
  };
}

/** A random cut among `storeIds`: a partition in two, an isolated store, one-way, or flapping. */
export function randomCut(
  random: SeededRandom,
  opts: { storeIds: readonly bigint[]; leaderStore: bigint | undefined; round: () => number },
): Filter {
  const ids = [...opts.storeIds];
  const victim = opts.leaderStore !== undefined && random.chance(0.5)
    ? opts.leaderStore
    : random.pick(ids);
  const rest = ids.filter((id) => id !== victim);
  switch (random.int(4)) {
    case 0: {
      // A partition in two halves of random sizes (the victim's side may be the majority).
      const side = ids.filter((id) => id === victim || random.chance(0.4));
      return partition([side, ids.filter((id) => !side.includes(id))]);
    }
    case 1:
      return partition([[victim], rest]);
    case 2:
      return random.chance(0.5) ? oneWayCut([victim], rest) : oneWayCut(rest, [victim]);
    default:
      return flappingLink({
        a: victim,
        others: rest.filter(() => random.chance(0.7)),
        periodRounds: 2 + random.int(12),
        round: opts.round,
      });
  }
}
