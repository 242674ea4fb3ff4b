/**
 * Per-key latches for raw writes: a write holds every key it touches until it is durable, so a
 * compare-and-swap reads and writes with no other write to its keys in between.
 *
 * Keys are acquired in sorted order, so two batches never wait on each other in a cycle. Waiters
 * for one key are served first come, first served.
 */
import { toHex } from "../../util/bytes.ts";

/** Releases the latches it was returned with. Call exactly once. */
export type Release = () => void;

/** The latch table of one store. Its size is bounded by the writes in flight. */
export class Latches {
  readonly #tails = new Map<string, Promise<void>>();

  /** Waits until every key in `keys` (of column family `cf`) is free, then holds them. */
  async acquire(cf: string, keys: readonly Uint8Array[]): Promise<Release> {
    const names = [...new Set(keys.map((key) => `${cf}/${toHex(key)}`))].sort();
    const releases: (() => void)[] = [];
    for (const name of names) {
      const previous = this.#tails.get(name);
      let release!: () => void;
      const mine = new Promise<void>((resolve) => release = resolve);
      this.#tails.set(name, mine);
      releases.push(() => {
        if (this.#tails.get(name) === mine) this.#tails.delete(name);
        release();
      });
      if (previous !== undefined) await previous;
    }
    let released = false;
    return () => {
      if (released) throw new Error("latch released twice");
      released = true;
      for (const release of releases) release();
    };
  }

  /** Number of keys latched or awaited. */
  get size(): number {
    return this.#tails.size;
  }
}
