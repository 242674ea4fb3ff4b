/**
 * A transaction's write buffer (client-go's `MemDB`, simplified): the latest mutation of each
 * key the transaction wrote or locked, read back by the transaction's own reads
 * (read-your-writes) and turned into prewrite mutations at commit, in key order.
 *
 * Mutations combine the way TiKV's clients combine them, so one key carries one mutation:
 *
 * | had \ then      | set         | delete          | insert                     | lock |
 * | --------------- | ----------- | --------------- | -------------------------- | ---- |
 * | nothing, Lock   | Put         | Del             | Insert                     | Lock |
 * | Put             | Put         | Del             | KeyAlreadyExists (thrown)  | Put  |
 * | Del             | Put         | Del             | Put                        | Del  |
 * | Insert          | Insert      | CheckNotExists  | KeyAlreadyExists (thrown)  | same |
 * | CheckNotExists  | Insert      | CheckNotExists  | Insert                     | same |
 *
 * (Insert then delete still requires that the key did not exist: CheckNotExists.)
 */
import { compareBytes } from "../../util/bytes.ts";
import { keyId } from "../keys.ts";
import { KeyAlreadyExistsError } from "./errors.ts";

// The key identity lives with the other key helpers; the transactional modules take it from here.
export { keyId };

/** The operation buffered for a key. */
export type MutationOp = "Put" | "Del" | "Insert" | "Lock" | "CheckNotExists";

/** One buffered mutation. */
export interface BufferedMutation {
  readonly key: Uint8Array;
  readonly op: MutationOp;
  /** The value of Put and Insert; empty otherwise. */
  readonly value: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Whether the buffered mutation makes the key absent for this transaction's reads. */
export function readsAsAbsent(op: MutationOp): boolean {
  return op === "Del" || op === "CheckNotExists";
}

/** Whether the buffered mutation gives the key a value for this transaction's reads. */
export function readsAsPresent(op: MutationOp): boolean {
  return op === "Put" || op === "Insert";
}

/** The write buffer of one transaction. */
export class MemBuffer {
  readonly #entries = new Map<string, BufferedMutation>();
  #sorted: BufferedMutation[] | null = [];
  #bytes = 0;

  /** Keys buffered. */
  get size(): number {
    return this.#entries.size;
  }

  /** Key and value bytes buffered. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The mutation of `key`, if any. */
  get(key: Uint8Array): BufferedMutation | undefined {
    return this.#entries.get(keyId(key));
  }

  set(key: Uint8Array, value: Uint8Array): void {
    const had = this.get(key)?.op;
    const op = had === "Insert" || had === "CheckNotExists" ? "Insert" : "Put";
    this.#put({ key, op, value });
  }

  delete(key: Uint8Array): void {
    const had = this.get(key)?.op;
    const op = had === "Insert" || had === "CheckNotExists" ? "CheckNotExists" : "Del";
    this.#put({ key, op, value: EMPTY });
  }

  /** Buffers an insert; throws `KeyAlreadyExistsError` when this transaction wrote the key. */
  insert(key: Uint8Array, value: Uint8Array): void {
    const had = this.get(key)?.op;
    if (had === "Put" || had === "Insert") throw new KeyAlreadyExistsError(key);
    this.#put({ key, op: had === "Del" ? "Put" : "Insert", value });
  }

  /** Marks `key` locked (checked for conflicts at commit) unless it is already written. */
  lock(key: Uint8Array): void {
    if (this.get(key) === undefined) this.#put({ key, op: "Lock", value: EMPTY });
  }

  /** Every mutation in key order. */
  mutations(): readonly BufferedMutation[] {
    this.#sorted ??= [...this.#entries.values()].sort((a, b) => compareBytes(a.key, b.key));
    return this.#sorted;
  }

  /** Mutations with keys in [start, end) (empty end: unbounded), in key order. */
  range(start: Uint8Array, end: Uint8Array): BufferedMutation[] {
    return this.mutations().filter((mutation) =>
      compareBytes(mutation.key, start) >= 0 &&
      (end.length === 0 || compareBytes(mutation.key, end) < 0)
    );
  }

  #put(mutation: BufferedMutation): void {
    const id = keyId(mutation.key);
    const previous = this.#entries.get(id);
    if (previous !== undefined) this.#bytes -= previous.key.length + previous.value.length;
    // Keys are copied: the caller may reuse its arrays.
    const stored = { key: mutation.key.slice(), op: mutation.op, value: mutation.value.slice() };
    this.#entries.set(id, stored);
    this.#bytes += stored.key.length + stored.value.length;
    this.#sorted = null;
  }
}
