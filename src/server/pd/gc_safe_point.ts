/**
 * The cluster's GC safe point: a timestamp below which MVCC versions may be collected. It only
 * moves forward, and every move is durable before it is acknowledged (PD's UpdateGCSafePoint).
 * Pure over a durable cell.
 *
 * @module
 */
import type { ValueStore } from "../../tso/mod.ts";

/** The persisted GC safe point. */
export class GcSafePoint {
  readonly #store: ValueStore;
  #value: bigint;

  private constructor(store: ValueStore, value: bigint) {
    this.#store = store;
    this.#value = value;
  }

  /** Loads the safe point; a cell never written is saved as 0 so that it exists from now on. */
  static open(store: ValueStore): GcSafePoint {
    const loaded = store.load();
    if (loaded === null) store.save(0n);
    return new GcSafePoint(store, loaded ?? 0n);
  }

  /** The current safe point. */
  get value(): bigint {
    return this.#value;
  }

  /**
   * Moves the safe point to `candidate` if that is later, durably; returns the safe point in
   * force afterwards, which is `candidate` or the larger current one (as PD answers).
   */
  update(candidate: bigint): bigint {
    if (candidate > this.#value) {
      this.#store.save(candidate);
      this.#value = candidate;
    }
    return this.#value;
  }
}
