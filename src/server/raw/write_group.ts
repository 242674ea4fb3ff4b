/**
 * Group commit for the raw writes of one worker: every write that reaches the store in one wave
 * of microtasks (the writes of one BatchCommands message are added synchronously, one after the
 * other) goes into ONE WriteBatch, applied by ONE engine write when the wave ends.
 * With sync-log that is one nonblocking FFI hop and one fsync for the whole group, where a
 * write of its own cost a thread hop (~30 µs), ~6 futex calls and a share of an fsync
 * (measured: ~100 µs of store CPU per put at 64 in flight, 6 puts per fsync).
 *
 * Invariants:
 * - A write's promise settles when its group is applied — durable (WAL fsynced) when the group
 *   is durable — and its latches are released only then (the group releases them, just before
 *   settling): an acknowledged write is durable, and two writes of one key never share a group
 *   (the second waits for the first's latch, so it lands in a later group, in order).
 * - A write's operations all go into one group batch, so each write stays atomic. Callers check
 *   sizes before adding; should adding still throw, the whole group fails and nothing of it is
 *   written.
 * - A group is written when the wave ends, or at once when it reaches `GROUP_MAX_BYTES`, even
 *   while an earlier group is still in flight: RocksDB orders concurrent writes and commits them
 *   together (its own group commit), so groups never wait for each other here.
 * - A failed group write fails every write of the group (each learns the engine's error).
 */
import type { KvEngine, WriteBatch } from "../../engine/types.ts";
import type { Release } from "./latches.ts";

/**
 * Bytes (keys + values) at which a group is written without waiting for the end of the wave,
 * so one wave's writes never build an unbounded batch.
 */
export const GROUP_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Durable group writes in flight at once; more groups wait to be written. Measured: 4 left
 * BatchCommands puts as they were (a client's streams rarely have more messages in flight) and
 * cut unary puts at 64 in flight from 182 to 136 µs of store CPU each (5.5k -> 6.5k/s); 1 cost
 * BatchCommands puts at 256 in flight a quarter of their throughput.
 */
export const GROUPS_IN_FLIGHT_MAX = 4;

/** One write: its size, what it adds to the batch, and the latches to release once applied. */
export interface GroupWrite {
  /** Key and value bytes the write adds (for `GROUP_MAX_BYTES`). */
  sizeBytes: number;
  /** Adds the write's operations to `batch`. Must not throw after the caller's checks. */
  fill(batch: WriteBatch): void;
  /** Released when the group is applied (or failed); null when the write holds none. */
  release: Release | null;
}

/** The open group: its batch, its writers' latches, and the promise they all share. */
interface Group {
  batch: WriteBatch;
  sizeBytes: number;
  releases: Release[];
  /** Set when adding a write threw: the group is failed whole. */
  broken: unknown;
  done: Promise<void>;
  settle: (error: unknown) => void;
}

/** Writes of one engine, grouped per wave of microtasks. */
export class WriteGroups {
  #open: Group | null = null;
  #scheduled = false;
  /** Durable group writes not yet done. */
  #inFlight = 0;

  /** `durable`: each group is fsynced (`writeDurable`); otherwise written without fsync. */
  constructor(private readonly engine: KvEngine, private readonly durable: boolean) {}

  /** Adds `write` to the current group; resolves once the group is applied. */
  write(write: GroupWrite): Promise<void> {
    const group = this.#open ?? this.#start();
    if (write.release !== null) group.releases.push(write.release);
    if (group.broken === undefined) {
      try {
        write.fill(group.batch);
      } catch (error) {
        group.broken = error ?? new Error("adding a write to the group failed");
      }
    }
    group.sizeBytes += write.sizeBytes;
    if (group.sizeBytes >= GROUP_MAX_BYTES) this.#commit();
    else if (!this.#scheduled) {
      // A microtask queued now runs after the writes added in this synchronous run (one
      // message's). Waiting for the end of the event-loop turn instead (setImmediate) was
      // measured to cost a third of the throughput at 64 puts in flight (56k -> 37k/s): in a
      // closed loop every delay before the fsync adds to latency. Deno fires setTimeout(0) ~1 ms
      // late, worse still.
      this.#scheduled = true;
      queueMicrotask(this.#onWaveEnd);
    }
    return group.done;
  }

  #start(): Group {
    let settle!: (error: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (error) => error === undefined ? resolve() : reject(error);
    });
    // Rejections are the writers' to handle; an empty group has none yet.
    done.catch(() => {});
    const group: Group = {
      batch: this.engine.newWriteBatch(),
      sizeBytes: 0,
      releases: [],
      broken: undefined,
      done,
      settle,
    };
    this.#open = group;
    return group;
  }

  readonly #onWaveEnd = (): void => {
    this.#scheduled = false;
    if (this.#inFlight < GROUPS_IN_FLIGHT_MAX) this.#commit();
  };

  /** A durable write is done: a group held back for it may go now. */
  #landed(): void {
    this.#inFlight--;
    if (this.#open !== null && !this.#scheduled) this.#commit();
  }

  /** Writes the open group, if any. */
  #commit(): void {
    const group = this.#open;
    if (group === null) return;
    this.#open = null;
    if (group.broken !== undefined) return finish(group, group.broken);
    if (!this.durable) {
      let failure: unknown = undefined;
      try {
        this.engine.write(group.batch);
      } catch (error) {
        failure = error ?? new Error("group write failed");
      }
      return finish(group, failure);
    }
    this.#inFlight++;
    this.engine.writeDurable(group.batch).then(() => {
      finish(group, undefined);
      this.#landed();
    }, (error: unknown) => {
      finish(group, error ?? new Error("durable group write failed"));
      this.#landed();
    });
  }
}

/** Frees the group's batch, releases its writers' latches, then settles their promise. */
function finish(group: Group, failure: unknown): void {
  group.batch.destroy();
  for (const release of group.releases) release();
  group.settle(failure);
}
