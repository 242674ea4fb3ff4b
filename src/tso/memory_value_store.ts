/** A `ValueStore` in memory, for tests and the simulator; `saves` records every value saved. */
import type { ValueStore } from "./types.ts";

/** A `ValueStore` held in memory. Set `failNextSave` to make the next `save` throw. */
export class MemoryValueStore implements ValueStore {
  readonly saves: bigint[] = [];
  failNextSave = false;
  #value: bigint | null;

  constructor(initial: bigint | null = null) {
    this.#value = initial;
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
  }
}
