/**
 * YCSB's core workloads A–F (the `workloads/workload[a-f]` files of YCSB) and the operation
 * chooser that drives them, over any store offering YCSB's five operations.
 *
 * | workload | mix                                   | request distribution |
 * | -------- | ------------------------------------- | -------------------- |
 * | A        | 50% read, 50% update                  | zipfian              |
 * | B        | 95% read, 5% update                   | zipfian              |
 * | C        | 100% read                             | zipfian              |
 * | D        | 95% read, 5% insert                   | latest               |
 * | E        | 95% scan (1–100 keys), 5% insert      | zipfian              |
 * | F        | 50% read, 50% read-modify-write       | zipfian              |
 *
 * Records are one field of `VALUE_BYTES` bytes (YCSB's default is 10 fields of 100 bytes; one
 * value of the same total keeps the comparison about the store, not field encoding). Key
 * names are YCSB's: "user" + fnvhash64(key number), so inserts land all over the key space.
 * The operation and key of request i are drawn when request i starts, from one seeded
 * random source, so both stores see the same sequence.
 */
import type { SeededRandom } from "../src/util/random.ts";
import { fnvHash64, ScrambledZipfianGenerator, SkewedLatestGenerator } from "./ycsb_generators.ts";

/** Bytes of a record's value. */
export const VALUE_BYTES = 1_000;
/** Longest scan of workload E (YCSB's workloade `maxscanlength`). */
export const MAX_SCAN_LENGTH = 100;

/** YCSB's operations. */
export type Operation = "read" | "update" | "insert" | "scan" | "readModifyWrite";

/** A store under test: each call resolves to null on success or an error description. */
export interface YcsbStore {
  read(key: Uint8Array): Promise<string | null>;
  update(key: Uint8Array, value: Uint8Array): Promise<string | null>;
  insert(key: Uint8Array, value: Uint8Array): Promise<string | null>;
  scan(key: Uint8Array, count: number): Promise<string | null>;
  readModifyWrite(key: Uint8Array, value: Uint8Array): Promise<string | null>;
}

/** One of the core workloads. */
export interface Workload {
  name: "A" | "B" | "C" | "D" | "E" | "F";
  mix: Partial<Record<Operation, number>>;
  distribution: "zipfian" | "latest";
}

export const WORKLOADS: readonly Workload[] = [
  { name: "A", mix: { read: 0.5, update: 0.5 }, distribution: "zipfian" },
  { name: "B", mix: { read: 0.95, update: 0.05 }, distribution: "zipfian" },
  { name: "C", mix: { read: 1 }, distribution: "zipfian" },
  { name: "D", mix: { read: 0.95, insert: 0.05 }, distribution: "latest" },
  { name: "E", mix: { scan: 0.95, insert: 0.05 }, distribution: "zipfian" },
  { name: "F", mix: { read: 0.5, readModifyWrite: 0.5 }, distribution: "zipfian" },
];

/** The key of record `keyNumber` under `prefix` (YCSB's `buildKeyName`, hashed). */
export function recordKey(prefix: string, keyNumber: number): Uint8Array {
  return new TextEncoder().encode(`${prefix}user${fnvHash64(keyNumber)}`);
}

/** How many records a key space holds: grows with inserts, shared across workloads. */
export class KeySpace {
  /** Key numbers handed to inserts so far (the next insert takes this one). */
  nextInsert: number;
  /** Inserts acknowledged: key numbers below `records + acknowledged` are readable. */
  acknowledged = 0;

  constructor(readonly prefix: string, readonly records: number) {
    this.nextInsert = records;
  }

  /** The largest key number known to be inserted. */
  latest(): number {
    return this.records + this.acknowledged - 1;
  }
}

/**
 * The request stream of one workload over one key space: request i → an operation. Create one
 * per (workload, store) run with the same seed to replay the same requests.
 */
export class RequestStream {
  readonly #choices: [Operation, number][];
  readonly #zipfian: ScrambledZipfianGenerator;
  readonly #latest: SkewedLatestGenerator;

  constructor(
    readonly workload: Workload,
    readonly keys: KeySpace,
    readonly random: SeededRandom,
    expectedInserts: number,
  ) {
    let cumulative = 0;
    this.#choices = Object.entries(workload.mix).map(([op, share]) => {
      cumulative += share;
      return [op as Operation, cumulative];
    });
    // YCSB sizes the chooser for the keys expected by the end of the run (insert share × 2).
    this.#zipfian = new ScrambledZipfianGenerator(keys.nextInsert + expectedInserts * 2);
    this.#latest = new SkewedLatestGenerator(() => keys.latest());
  }

  /** Runs the next request against `store` (chosen before the first await). */
  run(store: YcsbStore, value: Uint8Array): Promise<string | null> {
    const roll = this.random.next();
    const op = this.#choices.find(([, upTo]) => roll < upTo)?.[0] ??
      this.#choices[this.#choices.length - 1]![0];
    if (op === "insert") {
      const keyNumber = this.keys.nextInsert++;
      return store.insert(recordKey(this.keys.prefix, keyNumber), value).then((error) => {
        if (error === null) this.keys.acknowledged++;
        return error;
      });
    }
    const key = recordKey(this.keys.prefix, this.#keyNumber());
    if (op === "read") return store.read(key);
    if (op === "update") return store.update(key, value);
    if (op === "readModifyWrite") return store.readModifyWrite(key, value);
    return store.scan(key, 1 + this.random.int(MAX_SCAN_LENGTH));
  }

  /** A key number of an existing record, by the workload's distribution. */
  #keyNumber(): number {
    if (this.workload.distribution === "latest") return this.#latest.next(this.random);
    for (;;) {
      const keyNumber = this.#zipfian.next(this.random);
      if (keyNumber <= this.keys.latest()) return keyNumber;
    }
  }
}
