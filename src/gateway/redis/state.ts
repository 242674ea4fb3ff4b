/**
 * What the gateway shares between connections: the client library, statistics (INFO stats),
 * the WATCH registry and the SCAN cursors.
 */
import type { TxnKV } from "../../client/mod.ts";
import { REDIS_SCAN_CURSORS_MAX } from "../../constants.ts";
import type { Session, WatchEntry } from "./session.ts";

/** INFO's stats section. */
export interface GatewayStats {
  totalConnectionsReceived: number;
  totalCommandsProcessed: number;
  rejectedConnections: number;
  expiredKeys: number;
  keyspaceHits: number;
  keyspaceMisses: number;
  batches: number;
  batchRetries: number;
}

/** Where a SCAN or HSCAN left off. */
export interface ScanCursor {
  /** The hash of an HSCAN; null for SCAN. */
  key: Uint8Array | null;
  /** The last storage key examined. */
  after: Uint8Array;
}

/** Gateway-wide state. */
export class GatewayState {
  readonly stats: GatewayStats = {
    totalConnectionsReceived: 0,
    totalCommandsProcessed: 0,
    rejectedConnections: 0,
    expiredKeys: 0,
    keyspaceHits: 0,
    keyspaceMisses: 0,
    batches: 0,
    batchRetries: 0,
  };
  readonly startedAtMs = Date.now();
  readonly runId: string = crypto.randomUUID().replaceAll("-", "").padEnd(40, "0").slice(0, 40);
  /** Watchers of each key (as `binaryKey`). */
  readonly #watchers = new Map<string, Set<WatchEntry>>();
  readonly #cursors = new Map<number, ScanCursor>();
  #nextCursor = 1;
  connectedClients = 0;
  /** The bound port (INFO, CONFIG GET port). */
  port = 0;

  constructor(readonly kv: TxnKV, readonly maxClients: number) {}

  /** Marks every watch of `key` dirty: a command of this gateway changed it. */
  touch(key: string): void {
    const entries = this.#watchers.get(key);
    if (entries === undefined) return;
    for (const entry of entries) entry.dirty = true;
  }

  /** Marks every watch dirty (FLUSHDB, FLUSHALL). */
  touchAll(): void {
    for (const entries of this.#watchers.values()) for (const entry of entries) entry.dirty = true;
  }

  /** Registers `entry` (replacing the session's earlier watch of the same key). */
  watch(entry: WatchEntry): void {
    this.#forget(entry.session.watched.get(entry.key));
    entry.session.watched.set(entry.key, entry);
    let entries = this.#watchers.get(entry.key);
    if (entries === undefined) this.#watchers.set(entry.key, entries = new Set());
    entries.add(entry);
  }

  /** Forgets every watch of `session`. */
  unwatchAll(session: Session): void {
    for (const entry of session.watched.values()) this.#forget(entry);
    session.watched.clear();
  }

  #forget(entry: WatchEntry | undefined): void {
    if (entry === undefined) return;
    const entries = this.#watchers.get(entry.key);
    entries?.delete(entry);
    if (entries?.size === 0) this.#watchers.delete(entry.key);
  }

  /** Stores a cursor; the oldest is dropped past REDIS_SCAN_CURSORS_MAX. Returns its id. */
  saveCursor(cursor: ScanCursor): number {
    const id = this.#nextCursor++;
    this.#cursors.set(id, cursor);
    if (this.#cursors.size > REDIS_SCAN_CURSORS_MAX) {
      this.#cursors.delete(this.#cursors.keys().next().value!);
    }
    return id;
  }

  /** The cursor `id`, or undefined when unknown (never issued, or dropped). */
  cursor(id: number): ScanCursor | undefined {
    return this.#cursors.get(id);
  }

  /** Cursors held (tests). */
  get cursorCount(): number {
    return this.#cursors.size;
  }
}
