/**
 * Group commit: the write path of a standalone store (`write_path.ts`). Every write that reaches
 * it in one wave of microtasks (the writes of one BatchCommands message are added
 * synchronously, one after the other) goes into ONE WriteBatch, applied by ONE engine write
 * when the wave ends. With sync-log that is one nonblocking FFI hop and one fsync for the whole
 * group, where a write of its own cost a thread hop (~30 µs), ~6 futex calls and a share of an
 * fsync (measured: ~100 µs of store CPU per put at 64 in flight, 6 puts per fsync).
 *
 * Invariants:
 * - A write's promise settles when its group is applied — durable (WAL fsynced) when the group
 *   is durable — and its `release` (latches) is called only then, by the group, just before
 *   settling: an acknowledged write is durable, and two writes of one key never share a group
 *   (the second waits for the first's latch, so it lands in a later group, in order).
 * - A write's modifications are copied into the group batch during `write` (duty 1 of the
 *   write path), all of them, so each write stays atomic. They are checked first (sizes,
 *   ranges, region): a write that fails the checks is refused alone and adds nothing. Should
 *   adding still throw, the whole group fails and nothing of it is written.
 * - A group is written when the wave ends, or at once when it reaches `WRITE_GROUP_MAX_BYTES`,
 *   even while an earlier group is still in flight: RocksDB orders concurrent writes and
 *   commits them together (its own group commit), so groups never wait for each other here.
 * - A group is fsynced when any of its writes asks for it (`sync`, by default the path's
 *   sync-log); at most `WRITE_GROUPS_IN_FLIGHT_MAX` durable group writes run at once.
 * - A failed group write fails every write of the group (each learns the engine's error).
 */
import { WRITE_GROUP_MAX_BYTES, WRITE_GROUPS_IN_FLIGHT_MAX } from "../constants.ts";
import { assertEntrySize, assertRange } from "../engine/limits.ts";
import type { KvEngine, WriteBatch } from "../engine/types.ts";
import { type Modification, modificationSizeBytes } from "./modification.ts";
import { assertModificationsInRegion, type RegionMeta } from "./region_range.ts";
import type { Release, WriteOptions, WritePath } from "./write_path.ts";

/** The open group: its batch, its writers' latches, and the promise they all share. */
interface Group {
  batch: WriteBatch;
  sizeBytes: number;
  /** Whether any write of the group must be durable when acknowledged. */
  sync: boolean;
  releases: Release[];
  /** Set when adding a write threw: the group is failed whole. */
  broken: unknown;
  done: Promise<void>;
  settle: (error: unknown) => void;
}

const RESOLVED = Promise.resolve();

/** The writes of one engine, grouped per wave of microtasks. */
export class GroupCommit implements WritePath {
  #open: Group | null = null;
  #scheduled = false;
  /** Durable group writes not yet done. */
  #inFlight = 0;
  readonly #engine: KvEngine;
  readonly #syncLog: boolean;

  /** `syncLog`: writes are fsynced before they are acknowledged, unless one says otherwise. */
  constructor(engine: KvEngine, options: { syncLog: boolean }) {
    this.#engine = engine;
    this.#syncLog = options.syncLog;
  }

  /** Adds the write to the current group; resolves once the group is applied. */
  write(
    region: RegionMeta,
    modifications: readonly Modification[],
    options?: WriteOptions,
  ): Promise<void> {
    const release = options?.release ?? null;
    const sizeBytes = admitWrite(region, modifications, release);
    if (typeof sizeBytes !== "number") return sizeBytes;
    const group = this.#open ?? this.#start();
    if (release !== null) group.releases.push(release);
    if (options?.sync ?? this.#syncLog) group.sync = true;
    if (group.broken === undefined) {
      try {
        for (const modification of modifications) addTo(group.batch, modification);
      } catch (error) {
        group.broken = error ?? new Error("adding a write to the group failed");
      }
    }
    group.sizeBytes += sizeBytes;
    if (group.sizeBytes >= WRITE_GROUP_MAX_BYTES) this.#commit();
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
      batch: this.#engine.newWriteBatch(),
      sizeBytes: 0,
      sync: false,
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
    if (this.#inFlight < WRITE_GROUPS_IN_FLIGHT_MAX) this.#commit();
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
    if (!group.sync) {
      let failure: unknown = undefined;
      try {
        this.#engine.write(group.batch);
      } catch (error) {
        failure = error ?? new Error("group write failed");
      }
      return finish(group, failure);
    }
    this.#inFlight++;
    this.#engine.writeDurable(group.batch).then(() => {
      finish(group, undefined);
      this.#landed();
    }, (error: unknown) => {
      finish(group, error ?? new Error("durable group write failed"));
      this.#landed();
    });
  }
}

/**
 * The checks every write path makes when a write arrives: a write outside its region is a bug
 * (contract 6: it throws here, before any latch is given back); one that breaks the engine's
 * limits, or that `refusal` refuses (a full disk), ends here rejected, and an empty one resolved,
 * their latches given back. Otherwise returns the write's key and value bytes.
 */
export function admitWrite(
  region: RegionMeta,
  modifications: readonly Modification[],
  release: Release | null,
  refusal: () => Error | null = () => null,
): number | Promise<void> {
  assertModificationsInRegion(region, modifications);
  let sizeBytes: number;
  try {
    sizeBytes = checkModifications(modifications);
    const refused = refusal();
    if (refused !== null) throw refused;
  } catch (error) {
    release?.();
    return Promise.reject(error);
  }
  if (modifications.length === 0) {
    release?.();
    return RESOLVED;
  }
  return sizeBytes;
}

/**
 * Throws, before anything is added, if a modification breaks the engine's limits (an oversized
 * key or value, a reversed range); returns the write's key and value bytes.
 */
function checkModifications(modifications: readonly Modification[]): number {
  let sizeBytes = 0;
  for (const modification of modifications) {
    if (modification.type === "deleteRange") {
      assertRange(modification.startKey, modification.endKey);
    } else {
      assertEntrySize(
        modification.key,
        modification.type === "put" ? modification.value : undefined,
      );
    }
    sizeBytes += modificationSizeBytes(modification);
  }
  return sizeBytes;
}

/** Adds one modification to `batch`. */
export function addTo(batch: WriteBatch, modification: Modification): void {
  switch (modification.type) {
    case "put":
      return batch.put(modification.cf, modification.key, modification.value);
    case "delete":
      return batch.delete(modification.cf, modification.key);
    case "deleteRange":
      return batch.deleteRange(modification.cf, modification.startKey, modification.endKey);
  }
}

/** Frees the group's batch, releases its writers' latches, then settles their promise. */
function finish(group: Group, failure: unknown): void {
  group.batch.destroy();
  for (const release of group.releases) release();
  group.settle(failure);
}
