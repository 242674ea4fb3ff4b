/**
 * The order the executor keeps between jobs, and which jobs may share a batch.
 *
 * Every job names the things it must stay in order on: its Redis keys, its connection (so a
 * pipeline runs in the order it was sent, as Redis runs it) — or everything (`"all"`: KEYS,
 * SCAN, FLUSHDB, INFO keyspace…). A job's predecessors are the last earlier job on each of its
 * names and the last earlier `"all"` job; an `"all"` job's are the last job on every name.
 *
 * Invariants kept:
 *   1. A job joins a batch only when each predecessor is done (its batch committed) or in that
 *      same batch, ahead of it (batches run their jobs in submission order). So two jobs on one
 *      key, or of one connection, run in submission order, and a job sees its predecessors'
 *      writes (its batch's start ts is taken after they committed).
 *   2. Batches that are running at the same time share no name: a job whose predecessor is
 *      running in another batch waits for it. Running batches touch disjoint keys, so they do
 *      not conflict with each other, and the history is the one of a serial run in an order
 *      that respects every key's and every connection's order (Redis's, for each client).
 *   3. Two jobs of different clients on different keys may commit in either order — as in
 *      Redis, had they arrived the other way round. No client can tell the history from a
 *      serial one: a reply is sent only after its batch committed, and a job submitted after
 *      that is ordered after it, or starts after it (a fresh start ts).
 *
 * Pure: no clock, no I/O; the executor calls `submit`, `nextBatch` and `finish`.
 */
import { assert } from "../../util/assert.ts";

/** One job in the order. */
export interface OrderNode<T> {
  readonly item: T;
  readonly seq: number;
  /** Names it is ordered on, or "all". */
  readonly names: readonly string[] | "all";
  /** Predecessors not yet known to be done (emptied once done). */
  preds: OrderNode<T>[];
  /** 0 while waiting; the batch number once in a batch. */
  batch: number;
  done: boolean;
}

/** What limits one batch: `fits(item, taken)` says whether `item` may join `taken` items. */
export type BatchLimit<T> = (item: T, taken: readonly T[]) => boolean;

/** The jobs submitted and not yet finished, with their order. */
export class JobOrder<T> {
  /** Jobs not yet in a batch, in submission order. */
  #waiting: OrderNode<T>[] = [];
  /** The last job on each name that is not done. */
  readonly #tails = new Map<string, OrderNode<T>>();
  /** The last "all" job that is not done. */
  #lastAll: OrderNode<T> | null = null;
  #nextSeq = 1;
  #nextBatch = 1;
  #unfinished = 0;

  /** Adds a job after every job submitted before it. */
  submit(item: T, names: readonly string[] | "all"): OrderNode<T> {
    const preds = new Set<OrderNode<T>>();
    if (this.#lastAll !== null) preds.add(this.#lastAll);
    if (names === "all") {
      for (const tail of this.#tails.values()) preds.add(tail);
    } else {
      for (const name of names) {
        const tail = this.#tails.get(name);
        if (tail !== undefined) preds.add(tail);
      }
    }
    const node: OrderNode<T> = {
      item,
      seq: this.#nextSeq++,
      names,
      preds: [...preds],
      batch: 0,
      done: false,
    };
    if (names === "all") {
      this.#tails.clear();
      this.#lastAll = node;
    } else {
      for (const name of names) this.#tails.set(name, node);
    }
    this.#waiting.push(node);
    this.#unfinished++;
    return node;
  }

  /**
   * The next batch: waiting jobs in submission order whose predecessors are done or taken
   * before them, as many as `fits` allows (at least one when any is ready). Empty when every
   * waiting job waits for a running batch.
   */
  nextBatch(fits: BatchLimit<T>): OrderNode<T>[] {
    const batch = this.#nextBatch++;
    const taken: OrderNode<T>[] = [];
    const items: T[] = [];
    const left: OrderNode<T>[] = [];
    let full = false;
    for (const node of this.#waiting) {
      const ready = !full &&
        node.preds.every((pred) => pred.done || pred.batch === batch);
      if (ready && (taken.length === 0 || fits(node.item, items))) {
        node.batch = batch;
        taken.push(node);
        items.push(node.item);
      } else {
        // A job left out leaves out whatever is ordered after it (its `batch` stays 0).
        if (ready) full = true;
        left.push(node);
      }
    }
    this.#waiting = left;
    return taken;
  }

  /** Marks the jobs of a batch done (committed or failed for good). */
  finish(nodes: readonly OrderNode<T>[]): void {
    for (const node of nodes) {
      assert(node.batch !== 0 && !node.done, "a job finishes once, after joining a batch", {
        seq: node.seq,
        batch: node.batch,
        done: node.done,
      });
      node.done = true;
      node.preds = [];
      this.#unfinished--;
      if (node.names === "all") {
        if (this.#lastAll === node) this.#lastAll = null;
      } else {
        for (const name of node.names) {
          if (this.#tails.get(name) === node) this.#tails.delete(name);
        }
      }
    }
  }

  /** Jobs not yet in a batch. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Jobs submitted and not finished (waiting or in a running batch). */
  get unfinished(): number {
    return this.#unfinished;
  }

  /** Names with a job not done (bounded by the unfinished jobs' names; tests). */
  get trackedNames(): number {
    return this.#tails.size;
  }
}
