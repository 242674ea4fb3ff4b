/**
 * The TTL manager (client-go's `ttlManager`): while a transaction holds locks, TxnHeartBeat on
 * its primary every half TTL extends the primary lock's TTL to "time since start + TTL", so
 * lock resolvers do not roll back a live but slow transaction. A crashed client stops
 * heartbeating, its lock expires, and the next reader that meets it rolls it back.
 *
 * The heartbeat stops when the transaction ends (`stop`), when the store says the lock is
 * gone (the transaction was committed or rolled back meanwhile), when the client is closed,
 * or after `MAX_TXN_LIFETIME_MS` (a transaction left open must not hold locks forever).
 */
import { ClientClosedError } from "../errors.ts";
import { physicalOf } from "../tso.ts";
import { MAX_TXN_LIFETIME_MS } from "./constants.ts";
import type { TxnRpc } from "./rpc.ts";

/** Heartbeats of one transaction's primary lock. */
export class Heartbeat {
  #cancelTimer: (() => void) | null = null;
  #stopped = false;
  #beats = 0;

  constructor(
    readonly rpc: TxnRpc,
    readonly txn: { startTs: bigint; primary: Uint8Array; ttlMs: number; timeoutMs: number },
  ) {}

  /** Heartbeats sent so far. */
  get beats(): number {
    return this.#beats;
  }

  /** Starts the timer (idempotent). */
  start(): void {
    if (this.#cancelTimer !== null || this.#stopped) return;
    this.#schedule();
  }

  /** Stops for good. */
  stop(): void {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelTimer = null;
  }

  #schedule(): void {
    this.#cancelTimer = this.rpc.clock.setTimer(() => {
      this.#cancelTimer = null;
      this.#beat().then((alive) => {
        if (alive && !this.#stopped) this.#schedule();
      });
    }, Math.max(10, Math.floor(this.txn.ttlMs / 2)));
  }

  /** One TxnHeartBeat; false when the lock is gone or the call failed for good. */
  async #beat(): Promise<boolean> {
    if (this.#stopped) return false;
    const elapsedMs = Math.max(0, this.rpc.clock.nowMs() - physicalOf(this.txn.startTs));
    // A transaction left open forever must not hold its locks forever.
    if (elapsedMs > MAX_TXN_LIFETIME_MS) return false;
    const backoffer = this.rpc.backoffer(Math.min(this.txn.timeoutMs, this.txn.ttlMs));
    try {
      const response = await this.rpc.sendToKey("TxnHeartBeat", this.txn.primary, () => ({
        primaryLock: this.txn.primary,
        startVersion: this.txn.startTs,
        adviseLockTtl: BigInt(elapsedMs + this.txn.ttlMs),
      }), { backoffer, idempotent: true });
      this.#beats++;
      return response.error == null;
    } catch (error) {
      // A closed client stops for good; a store out of reach now may be back for the next beat.
      return !(error instanceof ClientClosedError);
    }
  }
}
