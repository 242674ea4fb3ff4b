/** A `ValueStore` in memory, for tests and the simulator; `saves` records every value saved. */
import type { Clock, ValueStore } from "./types.ts";

/**
 * A `ValueStore` held in memory. Set `failNextSave` to make the next `save` throw. Given a
 * clock, it records when each value was saved (`savedAtMs`), as a file's modification time
 * does.
 */
export class MemoryValueStore implements ValueStore {
  readonly saves: bigint[] = [];
  failNextSave = false;
  #value: bigint | null;
  readonly #clock: Clock | null;
  #savedAtMs: number | null = null;

  constructor(initial: bigint | null = null, options: { clock?: Clock } = {}) {
    this.#value = initial;
    this.#clock = options.clock ?? null;
  }

  savedAtMs(): number | null {
    return this.#savedAtMs;
  }

  load(): bigint | null {
    return this.#value;
  }

  save(value: bigint): void {
    if (this.failNextSave) {
      this.failNextSave = false;
      throw new Error("MemoryValueStore: injected save failure");
    }
    this.#value = value;
    this.saves.push(value);
    this.#savedAtMs = this.#clock?.nowMs() ?? null;
  }
}
