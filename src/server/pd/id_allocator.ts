/**
 * Unique ids (stores, regions, peers) that are never reissued, across restarts too: PD's
 * allocator (`pkg/id/id.go`). Pure over a durable cell holding the window end.
 *
 * Invariants: `base <= end`; every id handed out is in (previous base, base] and <= the end
 * that was durably saved before it was handed out, so a restart that begins at the saved end
 * never repeats one (ids between the last issued and the saved end are skipped, as in PD).
 *
 * @module
 */
import type { ValueStore } from "../../tso/mod.ts";
import { PD_ID_ALLOC_MAX_COUNT, PD_ID_ALLOC_STEP } from "./constants.ts";

const U64_MAX = (1n << 64n) - 1n;

/** An expected refusal of the id allocator. */
export class IdAllocError extends Error {
  constructor(readonly code: "InvalidCount" | "IdExhausted", message: string) {
    super(message);
    this.name = "IdAllocError";
  }
}

/** How an id allocator is opened. */
export interface IdAllocatorOptions {
  store: ValueStore;
  /** Ids up to and including this one are in use already (the standalone store's fixed ids). */
  reservedThrough?: bigint;
  /** Ids reserved per save; default `PD_ID_ALLOC_STEP`. */
  step?: bigint;
}

/** Allocates ids from a persisted window. */
export class IdAllocator {
  readonly #store: ValueStore;
  readonly #step: bigint;
  #base: bigint;
  #end: bigint;

  private constructor(store: ValueStore, step: bigint, base: bigint) {
    this.#store = store;
    this.#step = step;
    this.#base = base;
    this.#end = base;
  }

  /** Begins at the saved window end (or past the reserved ids) and saves a fresh window. */
  static open(options: IdAllocatorOptions): IdAllocator {
    const step = options.step ?? PD_ID_ALLOC_STEP;
    if (step < 1n) throw new RangeError(`id step must be positive: ${step}`);
    const loaded = options.store.load() ?? 0n;
    const reserved = options.reservedThrough ?? 0n;
    const allocator = new IdAllocator(options.store, step, loaded > reserved ? loaded : reserved);
    allocator.#renew(0n);
    return allocator;
  }

  /** The largest id handed out so far (or the starting point). */
  get lastId(): bigint {
    return this.#base;
  }

  /**
   * Hands out `count` consecutive ids and returns the last; they are `last - count + 1 … last`
   * (PD's AllocID answers with the last id and the count).
   */
  alloc(count = 1): bigint {
    if (!Number.isSafeInteger(count) || count < 1 || count > PD_ID_ALLOC_MAX_COUNT) {
      throw new IdAllocError(
        "InvalidCount",
        `id count must be in [1, ${PD_ID_ALLOC_MAX_COUNT}]: ${count}`,
      );
    }
    const wanted = BigInt(count);
    if (this.#base + wanted > this.#end) this.#renew(wanted);
    this.#base += wanted;
    if (this.#base > this.#end) throw new Error(`IdAllocator: base ${this.#base} passed its end`);
    return this.#base;
  }

  #renew(wanted: bigint): void {
    const end = this.#base + wanted + this.#step;
    if (end > U64_MAX) throw new IdAllocError("IdExhausted", "the id space is exhausted");
    this.#store.save(end); // before any id of the new window is handed out
    this.#end = end;
  }
}
