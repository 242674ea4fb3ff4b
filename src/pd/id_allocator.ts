/**
 * Unique ids (stores, regions, peers) never reissued, across restarts too: PD's allocator
 * (`pkg/id/id.go`) over `PdStorage` key `alloc_id`, which holds the end of the current window.
 *
 * Invariants: `lastId <= end`; the end is saved before any id of a new window is handed out,
 * so a restart that begins at the saved end never repeats one (ids between the last one handed
 * out and the saved end are skipped, as in PD).
 *
 * @module
 */
import { PD_ID_ALLOC_MAX_COUNT, PD_ID_ALLOC_STEP } from "../constants.ts";
import { assert } from "../util/assert.ts";
import { PdError } from "./errors.ts";
import { loadU64, PD_KEYS, type PdStorage, putU64 } from "./storage.ts";

const U64_MAX = (1n << 64n) - 1n;

/** How an id allocator is opened. */
export interface IdAllocatorOptions {
  storage: PdStorage;
  /** Ids up to and including this one are in use already (a standalone store's fixed ids). */
  reservedThrough?: bigint;
  /** Ids reserved per save; default `PD_ID_ALLOC_STEP`. */
  step?: bigint;
}

/** Allocates ids from a persisted window. */
export class IdAllocator {
  readonly #storage: PdStorage;
  readonly #step: bigint;
  /** Where a never-used allocator begins: the saved end, or the reserved ids. */
  readonly #reserved: bigint;
  #lastId: bigint;
  #end: bigint;

  private constructor(storage: PdStorage, step: bigint, start: { at: bigint; reserved: bigint }) {
    this.#storage = storage;
    this.#step = step;
    this.#reserved = start.reserved;
    this.#lastId = start.at;
    this.#end = start.at;
  }

  /** Begins at the saved window end (or past the reserved ids); saves a window on first use. */
  static open(options: IdAllocatorOptions): IdAllocator {
    const step = options.step ?? PD_ID_ALLOC_STEP;
    if (step < 1n) throw new RangeError(`id step must be positive: ${step}`);
    const loaded = loadU64(options.storage, PD_KEYS.allocId) ?? 0n;
    const reserved = options.reservedThrough ?? 0n;
    return new IdAllocator(options.storage, step, {
      at: loaded > reserved ? loaded : reserved,
      reserved,
    });
  }

  /**
   * Whether any id was ever handed out from this storage (a saved window, or one in memory):
   * a PD that has handed out ids may have a store about to bootstrap it.
   */
  get issuedAny(): boolean {
    return this.#end > this.#reserved;
  }

  /**
   * Continues above `end` after the caller wrote `alloc_id` = `end` in a batch of its own (a PD
   * adopting a standalone store's cluster writes it with the cluster's records: every id the
   * standalone store handed out is at most `end`). The next id is `end + 1`.
   */
  resumeAbove(end: bigint): void {
    assert(end >= this.#end, `the id window end only grows: ${this.#end} to ${end}`);
    this.#lastId = end;
    this.#end = end;
  }

  /** The largest id handed out so far (or the starting point). */
  get lastId(): bigint {
    return this.#lastId;
  }

  /**
   * Hands out `count` consecutive ids and returns the last: they are `last - count + 1 … last`
   * (PD's AllocID answers with the last id). A count outside [1, PD_ID_ALLOC_MAX_COUNT] or an
   * exhausted id space is a `PdError`.
   */
  alloc(count = 1): bigint | PdError {
    if (!Number.isSafeInteger(count) || count < 1 || count > PD_ID_ALLOC_MAX_COUNT) {
      return new PdError(
        "InvalidRequest",
        `id count must be in [1, ${PD_ID_ALLOC_MAX_COUNT}]: ${count}`,
      );
    }
    const wanted = BigInt(count);
    if (this.#lastId + wanted > this.#end) {
      const end = this.#lastId + wanted + this.#step;
      if (end > U64_MAX) return new PdError("LimitExceeded", "the id space is exhausted");
      this.#storage.write([putU64(PD_KEYS.allocId, end)]); // before any id of the window
      this.#end = end;
    }
    this.#lastId += wanted;
    assert(this.#lastId <= this.#end, `id ${this.#lastId} passed the window end ${this.#end}`);
    return this.#lastId;
  }

  /** Hands out one id; an exhausted id space is a bug at this point (2^64 ids). */
  allocOne(): bigint {
    const id = this.alloc(1);
    assert(typeof id === "bigint", `id allocation failed: ${String(id)}`);
    return id;
  }
}
