/**
 * One transaction: reads at its start ts (snapshot isolation), a write buffer its own reads
 * see first (read-your-writes), and a commit by two-phase commit, async commit or 1PC
 * (`committer.ts`). Optimistic by default: conflicts surface at commit as
 * `WriteConflictError`. Pessimistic (`begin({ pessimistic: true })`): `lockKeys` and
 * `getForUpdate` take locks as the transaction runs (`pessimistic.ts`), keys written without a
 * lock are locked at commit before prewrite, and the prewrite then cannot meet a conflict.
 *
 * Reads in a pessimistic transaction: `get` reads the snapshot at start ts, except keys this
 * transaction wrote (its buffer) or locked with `getForUpdate` (the newest value, read when
 * the lock was granted). A read-modify-write must use `getForUpdate`.
 *
 * A transaction is used by one caller at a time; after `commit` or `rollback` every method
 * throws `TxnStateError`.
 *
 * @example
 * ```ts ignore
 * const txn = await client.begin();
 * const balance = await txn.get("alice");
 * txn.set("alice", "90");
 * txn.set("bob", "110");
 * await txn.commit();
 * ```
 */
import { compareBytes, utf8 } from "../../util/bytes.ts";
import type { KvPair } from "../raw.ts";
import type { Bytes } from "../raw.ts";
import {
  type BufferedMutation,
  keyId,
  MemBuffer,
  readsAsAbsent,
  readsAsPresent,
} from "./buffer.ts";
import {
  type CommitHooks,
  type CommitResult,
  Committer,
  type CommitterContext,
} from "./committer.ts";
import { LOCK_TTL_FACTOR_MS, MANAGED_LOCK_TTL_MS, TXN_BATCH_MAX_BYTES } from "./constants.ts";
import { CommitUndeterminedError, TxnStateError } from "./errors.ts";
import { Heartbeat } from "./heartbeat.ts";
import {
  acquirePessimisticLocks,
  type LockContext,
  type LockedValues,
  type PessimisticState,
  releaseLocks,
} from "./pessimistic.ts";
import { Snapshot, type SnapshotContext, type TxnScanOptions } from "./snapshot.ts";

/** How a transaction runs and commits. */
export interface TransactionOptions {
  /** Take locks while running (default false: optimistic). */
  pessimistic?: boolean;
  /** Commit with async commit when the transaction is small enough (default false). */
  asyncCommit?: boolean;
  /** Commit in one phase when everything fits one request (default false). */
  onePc?: boolean;
  /** Wait for the secondaries' commit before `commit` resolves (default false). */
  awaitSecondaries?: boolean;
  /** TTL of prewrite locks of a small optimistic transaction, ms (default 3000). */
  lockTtlMs?: number;
  /** TTL of heartbeated locks (pessimistic locks), ms (default 20 000). */
  managedLockTtlMs?: number;
  /** Longest wait for a pessimistic lock held by another transaction, ms (default 3000). */
  lockWaitTimeoutMs?: number;
}

/** Everything a transaction needs of its client. */
export type TransactionContext = SnapshotContext & CommitterContext & LockContext;

/** Options of `commit`. */
export interface CommitOptions {
  /** Test hooks: stop at a phase as a crashed client would (see `CommitHooks`). */
  hooks?: CommitHooks;
}

type State = "active" | "committing" | "committed" | "rolledBack" | "undetermined";

const EMPTY = new Uint8Array(0);

function bytesOf(value: Bytes): Uint8Array {
  return typeof value === "string" ? utf8(value) : value;
}

/** A transaction of a `TxnKV`; created by `TxnKV.begin`. */
export class Transaction {
  readonly #context: TransactionContext;
  readonly #options: Required<TransactionOptions>;
  readonly #buffer = new MemBuffer();
  readonly #snapshot: Snapshot;
  readonly #pessimistic: PessimisticState | null;
  readonly #lockedValues: LockedValues = new Map();
  #heartbeat: Heartbeat | null = null;
  #state: State = "active";

  constructor(
    context: TransactionContext,
    readonly startTs: bigint,
    options: Required<TransactionOptions>,
  ) {
    this.#context = context;
    this.#options = options;
    this.#snapshot = new Snapshot(context, startTs);
    this.#pessimistic = options.pessimistic
      ? {
        startTs,
        primary: null,
        forUpdateTs: startTs,
        lockedKeys: new Set(),
        lockTtlMs: options.managedLockTtlMs,
      }
      : null;
  }

  /** Whether the transaction is pessimistic. */
  get pessimistic(): boolean {
    return this.#pessimistic !== null;
  }

  /** "active", "committing", "committed", "rolledBack" or "undetermined". */
  get state(): State {
    return this.#state;
  }

  /** Keys buffered for commit. */
  get bufferedKeys(): number {
    return this.#buffer.size;
  }

  /** The value of `key` as this transaction sees it, or null. */
  async get(key: Bytes): Promise<Uint8Array | null> {
    this.#assertActive("get");
    const bytes = bytesOf(key);
    const own = this.#ownValue(bytes);
    if (own !== undefined) return own;
    return await this.#snapshot.get(bytes);
  }

  /** The pairs of `keys` that exist as this transaction sees them, in the order of `keys`. */
  async batchGet(keys: readonly Bytes[]): Promise<KvPair[]> {
    this.#assertActive("batchGet");
    const all = keys.map(bytesOf);
    const remote = all.filter((key) => this.#ownValue(key) === undefined);
    const found = remote.length > 0 ? await this.#snapshot.batchGet(remote) : new Map();
    const seen = new Set<string>();
    const pairs: KvPair[] = [];
    for (const key of all) {
      const id = keyId(key);
      if (seen.has(id)) continue;
      seen.add(id);
      const own = this.#ownValue(key);
      const value = own !== undefined ? own : found.get(id) ?? null;
      if (value !== null) pairs.push({ key, value });
    }
    return pairs;
  }

  /**
   * Pairs with keys in [start, end) as this transaction sees them (its buffer merged over the
   * snapshot), smallest first, at most `limit`. An empty or absent `end` is unbounded.
   */
  async scan(start: Bytes, end?: Bytes | null, options: TxnScanOptions = {}): Promise<KvPair[]> {
    this.#assertActive("scan");
    const startKey = bytesOf(start);
    const endKey = end == null ? EMPTY : bytesOf(end);
    const limit = options.limit ?? 10_240;
    const buffered = this.#buffer.range(startKey, endKey).filter((m) => m.op !== "Lock");
    const absent = buffered.filter((m) => readsAsAbsent(m.op)).length;
    const ask = limit + absent;
    const stored = await this.#snapshot.scan(startKey, endKey, { ...options, limit: ask });
    // A truncated snapshot page says nothing of keys past its last one: buffered keys there
    // would jump the queue, so they wait for the next page (the caller's next scan).
    const lastKey = stored.length === ask ? stored[stored.length - 1]!.key : null;
    const inView = lastKey === null
      ? buffered
      : buffered.filter((m) => compareBytes(m.key, lastKey) <= 0);
    return mergeScan(stored, inView, { limit, keyOnly: options.keyOnly ?? false });
  }

  /**
   * The value of `key`, locked for this transaction: pessimistic — the lock is taken now and
   * the newest value returned; optimistic — the key is checked for conflicts at commit.
   */
  async getForUpdate(key: Bytes): Promise<Uint8Array | null> {
    const [pair] = await this.#getForUpdate([bytesOf(key)]);
    return pair!.value;
  }

  /** `getForUpdate` of several keys in one call; the pairs that exist, in the order of `keys`. */
  async batchGetForUpdate(keys: readonly Bytes[]): Promise<KvPair[]> {
    const pairs = await this.#getForUpdate(keys.map(bytesOf));
    return pairs.filter((pair): pair is KvPair => pair.value !== null);
  }

  /** Buffers `key` = `value`. */
  set(key: Bytes, value: Bytes): void {
    this.#assertActive("set");
    this.#buffer.set(nonEmpty(bytesOf(key)), bytesOf(value));
  }

  /** Buffers the deletion of `key`. */
  delete(key: Bytes): void {
    this.#assertActive("delete");
    this.#buffer.delete(nonEmpty(bytesOf(key)));
  }

  /**
   * Buffers `key` = `value` on condition that `key` has no value: the commit fails with
   * `KeyAlreadyExistsError` otherwise (Op.Insert). Throws it at once when this transaction
   * itself gave the key a value.
   */
  insert(key: Bytes, value: Bytes): void {
    this.#assertActive("insert");
    this.#buffer.insert(nonEmpty(bytesOf(key)), bytesOf(value));
  }

  /**
   * Locks keys without writing them: pessimistic — locks are taken now (waiting for other
   * transactions' locks up to `lockWaitTimeoutMs`); optimistic — the commit fails with a write
   * conflict if another transaction wrote any of them after this one started.
   */
  async lockKeys(...keys: Bytes[]): Promise<void> {
    this.#assertActive("lockKeys");
    const bytes = keys.map((key) => nonEmpty(bytesOf(key)));
    if (this.#pessimistic !== null) await this.#lockPessimistic(bytes, { returnValues: false });
    for (const key of bytes) this.#buffer.lock(key);
  }

  /** Commits; resolves with the commit ts and how it committed. */
  async commit(options: CommitOptions = {}): Promise<CommitResult> {
    this.#assertActive("commit");
    this.#state = "committing";
    try {
      if (this.#pessimistic !== null) {
        try {
          await this.#lockWrittenKeys();
        } catch (error) {
          await this.#releaseAllLocks();
          throw error;
        }
      }
      const mutations = this.#buffer.mutations();
      if (mutations.length === 0) {
        this.#state = "committed";
        return { commitTs: 0n, mode: "empty" };
      }
      const result = await new Committer(this.#context, {
        startTs: this.startTs,
        mutations,
        primary: this.#pessimistic?.primary ?? mutations[0]!.key,
        pessimistic: this.#pessimistic,
        asyncCommit: this.#options.asyncCommit,
        onePc: this.#options.onePc,
        lockTtlMs: this.#lockTtlMs(),
        awaitSecondaries: this.#options.awaitSecondaries,
        heartbeat: this.#heartbeat ?? this.#newHeartbeat(mutations, this.#lockTtlMs()),
        hooks: options.hooks,
      }).commit();
      this.#state = "committed";
      return result;
    } catch (error) {
      this.#state = error instanceof CommitUndeterminedError ? "undetermined" : "rolledBack";
      throw error;
    } finally {
      this.#heartbeat?.stop();
    }
  }

  /** Abandons the transaction, releasing its pessimistic locks. */
  async rollback(): Promise<void> {
    if (this.#state !== "active") return;
    this.#state = "rolledBack";
    this.#heartbeat?.stop();
    await this.#releaseAllLocks();
  }

  async #releaseAllLocks(): Promise<void> {
    const state = this.#pessimistic;
    if (state === null || state.lockedKeys.size === 0) return;
    const keys = this.#buffer.mutations()
      .filter((m) => state.lockedKeys.has(keyId(m.key)))
      .map((m) => m.key);
    await releaseLocks(this.#context, state, { keys, forUpdateTs: state.forUpdateTs });
  }

  /** The heartbeats sent for this transaction (for tests). */
  get heartbeats(): number {
    return this.#heartbeat?.beats ?? 0;
  }

  /** What this transaction itself says of `key`: a value, null (absent), or undefined. */
  #ownValue(key: Uint8Array): Uint8Array | null | undefined {
    const mutation = this.#buffer.get(key);
    if (mutation !== undefined && readsAsPresent(mutation.op)) return mutation.value;
    if (mutation !== undefined && readsAsAbsent(mutation.op)) return null;
    return this.#lockedValues.get(keyId(key));
  }

  async #getForUpdate(
    keys: Uint8Array[],
  ): Promise<{ key: Uint8Array; value: Uint8Array | null }[]> {
    this.#assertActive("getForUpdate");
    for (const key of keys) nonEmpty(key);
    if (this.#pessimistic !== null) {
      const unread = keys.filter((key) => this.#ownValue(key) === undefined);
      const values = await this.#lockPessimistic(keys, { returnValues: unread.length > 0 });
      for (const key of unread) this.#lockedValues.set(keyId(key), values.get(keyId(key)) ?? null);
      for (const key of keys) this.#buffer.lock(key);
      return keys.map((key) => ({ key, value: this.#ownValue(key) ?? null }));
    }
    const pairs = await this.batchGet(keys);
    for (const key of keys) this.#buffer.lock(key);
    const found = new Map(pairs.map((pair) => [keyId(pair.key), pair.value]));
    return keys.map((key) => ({ key, value: found.get(keyId(key)) ?? null }));
  }

  async #lockPessimistic(
    keys: Uint8Array[],
    how: { returnValues: boolean; mustNotExist?: ReadonlySet<string> },
  ): Promise<LockedValues> {
    const state = this.#pessimistic!;
    const values = await acquirePessimisticLocks(this.#context, state, keys, {
      lockWaitTimeoutMs: this.#options.lockWaitTimeoutMs,
      returnValues: how.returnValues,
      mustNotExist: how.mustNotExist,
    });
    if (this.#heartbeat === null && state.primary !== null) {
      this.#heartbeat = new Heartbeat(this.#context.rpc, {
        startTs: this.startTs,
        primary: state.primary,
        ttlMs: state.lockTtlMs,
        timeoutMs: this.#context.timeoutMs,
      });
      this.#heartbeat.start();
    }
    return values;
  }

  /** Pessimistic commit, step 0: lock the keys written without a lock. */
  async #lockWrittenKeys(): Promise<void> {
    const state = this.#pessimistic!;
    const unlocked = this.#buffer.mutations().filter((m) => !state.lockedKeys.has(keyId(m.key)));
    if (unlocked.length === 0) return;
    const mustNotExist = new Set(
      unlocked.filter((m) => m.op === "Insert" || m.op === "CheckNotExists").map((m) =>
        keyId(m.key)
      ),
    );
    await this.#lockPessimistic(unlocked.map((m) => m.key), { returnValues: false, mustNotExist });
  }

  /** TTL of this transaction's prewrite locks (client-go `txnLockTTL`), ms. */
  #lockTtlMs(): number {
    if (this.#pessimistic !== null) return this.#options.managedLockTtlMs;
    const bytes = this.#buffer.bytes;
    let ttlMs = this.#options.lockTtlMs;
    if (bytes >= TXN_BATCH_MAX_BYTES) {
      const sizeMiB = bytes / (1024 * 1024);
      ttlMs = Math.max(
        ttlMs,
        Math.min(MANAGED_LOCK_TTL_MS, LOCK_TTL_FACTOR_MS * Math.sqrt(sizeMiB)),
      );
    }
    return Math.round(ttlMs);
  }

  #newHeartbeat(mutations: readonly BufferedMutation[], ttlMs: number): Heartbeat {
    this.#heartbeat = new Heartbeat(this.#context.rpc, {
      startTs: this.startTs,
      primary: mutations[0]!.key,
      ttlMs,
      timeoutMs: this.#context.timeoutMs,
    });
    return this.#heartbeat;
  }

  #assertActive(what: string): void {
    if (this.#state !== "active") {
      throw new TxnStateError(`${what}: transaction ${this.startTs} is ${this.#state}`);
    }
  }
}

function nonEmpty(key: Uint8Array): Uint8Array {
  if (key.length === 0) throw new TxnStateError("the empty key is not allowed");
  return key;
}

/** The snapshot's pairs with the buffer's mutations laid over them, at most `limit`. */
function mergeScan(
  stored: readonly KvPair[],
  buffered: readonly BufferedMutation[],
  how: { limit: number; keyOnly: boolean },
): KvPair[] {
  const out: KvPair[] = [];
  let i = 0;
  let j = 0;
  while (out.length < how.limit && (i < stored.length || j < buffered.length)) {
    const pair = stored[i];
    const mutation = buffered[j];
    const order = pair === undefined ? 1 : mutation === undefined ? -1 : compareBytes(
      pair.key,
      mutation.key,
    );
    if (order < 0) {
      out.push(pair!);
      i++;
      continue;
    }
    if (order === 0) i++;
    j++;
    if (readsAsPresent(mutation!.op)) {
      out.push({ key: mutation!.key, value: how.keyOnly ? EMPTY : mutation!.value });
    }
  }
  return out;
}
