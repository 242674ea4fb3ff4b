/**
 * The chaos suite's raw workloads, through `RawKV` routed by PD:
 *
 * - Registers: clients get, put and compare-and-swap a few keys; each operation is recorded with
 *   its call and return times (`performance.now()`, one clock for every client of the process,
 *   so real-time order is exact) and its outcome, and the history is checked for
 *   linearizability by the simulator's Wing–Gong/Lowe checker (`sim/linearizability.ts`).
 *   Keys rotate: a key takes `CHAOS_REGISTER_OPS_PER_KEY` operations, then its slot moves to a
 *   fresh key (Jepsen's "independent" keys), which keeps each key's search small.
 * - Acknowledged writes: a writer puts fresh keys; every key it was told was written must read
 *   back at the end (a lost acknowledged write otherwise).
 *
 * History rules: a read that failed is left out (it saw nothing). A write that failed is of
 * unknown outcome (return time ∞) unless the client refused it before sending or the store
 * refused the request itself — the client retries puts after a possibly-applied send and any
 * command after StaleCommand, so a final error does not say "not applied". Every written value
 * is unique in the run.
 */
import { AssertionError } from "node:assert";
import { checkLinearizable, type KvOperation } from "../../sim/linearizability.ts";
import {
  ClientError,
  InvalidArgumentError,
  ServerError,
  UnsupportedError,
} from "../../src/client/errors.ts";
import type { RawKV } from "../../src/client/raw.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { SeededRandom } from "../../src/util/random.ts";

/** Register keys in use at once. */
export const CHAOS_REGISTER_SLOTS = 4;
/** Operations issued on one register key before its slot moves to a fresh key. */
export const CHAOS_REGISTER_OPS_PER_KEY = 120;
/** Most operations one workload loop issues (its run ends earlier, at the deadline). */
export const CHAOS_CLIENT_MAX_OPS = 1_000_000;
/** Longest pause between two operations of one client (drawn from the seed). */
export const CHAOS_THINK_MAX_MS = 20;
/** How long the final reads may take, retries included, once every fault is healed. */
export const CHAOS_FINAL_READ_TIMEOUT_MS = 60_000;
/** Keys asked per final batch read of the acknowledged writes. */
export const CHAOS_FINAL_BATCH_KEYS = 256;

/** The client id of the final reads in the history. */
export const FINAL_READER = -1;

/** One recorded operation: the checker's fields, and what the client saw. */
export interface RecordedOp extends KvOperation {
  outcome: "ok" | "fail" | "unknown";
  /** When the client got its answer or error (`ret` is ∞ for an unknown outcome). */
  doneAt: number;
  error?: string;
}

/** The register workload's shared state: the key of every slot, and the history. */
export class RegisterState {
  readonly history: RecordedOp[] = [];
  readonly #slots = Array.from({ length: CHAOS_REGISTER_SLOTS }, () => ({ gen: 0, issued: 0 }));
  readonly keys = new Set<string>();

  /** The key to use in slot `slot` now (counting the operation about to be issued). */
  keyFor(slot: number): string {
    const state = this.#slots[slot]!;
    if (state.issued >= CHAOS_REGISTER_OPS_PER_KEY) {
      state.gen++;
      state.issued = 0;
    }
    state.issued++;
    const key = registerKey(slot, state.gen);
    this.keys.add(key);
    return key;
  }
}

/** The key of slot `slot`'s generation `gen`. */
export function registerKey(slot: number, gen: number): string {
  return `chaos/reg/${slot}/${String(gen).padStart(4, "0")}`;
}

/** Raw keys a forced split may pick: inside and between the register and the writer's keys. */
export function rawSplitKeys(): string[] {
  const keys: string[] = [];
  for (let slot = 0; slot < CHAOS_REGISTER_SLOTS; slot++) {
    keys.push(`chaos/reg/${slot}`, registerKey(slot, 2), registerKey(slot, 5));
  }
  for (let n = 0; n < 10; n++) keys.push(ackKey(n * 500));
  return keys;
}

function ackKey(n: number): string {
  return `chaos/ack/${String(n).padStart(7, "0")}`;
}

/** Whether a failed write was surely not applied (refused before or by the store). */
function surelyNotApplied(error: unknown): boolean {
  return error instanceof InvalidArgumentError || error instanceof ServerError ||
    error instanceof UnsupportedError;
}

function describeError(error: unknown): string {
  if (error instanceof ClientError) return `${error.code}: ${error.message}`.slice(0, 200);
  return String((error as Error)?.message ?? error).slice(0, 200);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value: Uint8Array | null) => (value === null ? undefined : fromUtf8(value));

/**
 * One register client: until `running()` turns false, picks a slot and gets, puts or
 * compare-and-swaps its key (the CAS expects the value this client last saw there).
 */
export async function registerClient(
  options: {
    id: number;
    raw: RawKV;
    state: RegisterState;
    seed: number;
    running: () => boolean;
    /** Whether writes include plain puts (else every write is a CAS; see `ChaosOptions`). */
    puts: boolean;
  },
): Promise<void> {
  const { id, raw, state, running } = options;
  const putShare = options.puts ? 0.3 : 0;
  const random = new SeededRandom((options.seed ^ (0x7e61 + id * 0x9e37)) >>> 0);
  const lastSeen = new Map<string, string | undefined>();
  for (let n = 0; n < CHAOS_CLIENT_MAX_OPS && running(); n++) {
    const key = state.keyFor(random.int(CHAOS_REGISTER_SLOTS));
    const roll = random.next();
    const value = `c${id}-${n}`;
    const call = performance.now();
    const record = (fields: Partial<RecordedOp> & Pick<RecordedOp, "kind" | "outcome">) => {
      const doneAt = performance.now();
      const ret = fields.outcome === "unknown" ? Infinity : doneAt;
      state.history.push({ clientId: id, key, value: undefined, call, ret, doneAt, ...fields });
    };
    if (roll < 0.4) {
      try {
        const got = text(await raw.get(key));
        lastSeen.set(key, got);
        record({ kind: "get", value: got, outcome: "ok" });
      } catch (error) {
        record({ kind: "get", outcome: "fail", error: describeError(error) });
      }
    } else if (roll < 0.4 + putShare) {
      try {
        await raw.put(key, value);
        record({ kind: "put", value, outcome: "ok" });
      } catch (error) {
        const outcome = surelyNotApplied(error) ? "fail" : "unknown";
        record({ kind: "put", value, outcome, error: describeError(error) });
      }
    } else {
      const expected = lastSeen.get(key);
      try {
        const result = await raw.compareAndSwap(key, expected ?? null, value);
        const previous = text(result.previous);
        lastSeen.set(key, result.succeeded ? value : previous);
        record({
          kind: "cas",
          value,
          expected,
          swapped: result.succeeded,
          ...(result.succeeded ? {} : { previous }),
          outcome: "ok",
        });
      } catch (error) {
        const outcome = surelyNotApplied(error) ? "fail" : "unknown";
        record({ kind: "cas", value, expected, outcome, error: describeError(error) });
      }
    }
    await sleep(random.int(CHAOS_THINK_MAX_MS + 1));
  }
}

/** The acknowledged-writes workload's record. */
export interface AckState {
  acknowledged: string[];
  failed: number;
  lastError: string;
}

/** Puts fresh keys (value = key) until `running()` turns false; records the acknowledged ones. */
export async function ackWriter(
  options: { raw: RawKV; ack: AckState; running: () => boolean },
): Promise<void> {
  const { raw, ack, running } = options;
  for (let n = 0; n < CHAOS_CLIENT_MAX_OPS && running(); n++) {
    const key = ackKey(n);
    try {
      await raw.put(key, key);
      ack.acknowledged.push(key);
    } catch (error) {
      ack.failed++;
      ack.lastError = describeError(error);
    }
  }
}

/** Retries `read` (failures are expected while the cluster settles) until `deadlineMs`. */
async function readWithRetry<T>(what: string, deadlineMs: number, read: () => Promise<T>) {
  let last = "";
  while (Date.now() < deadlineMs) {
    try {
      return await read();
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      last = describeError(error);
      await sleep(200);
    }
  }
  throw new Error(`final read of ${what} failed until its deadline: ${last}`);
}

/**
 * The final reads, after every fault is healed and every workload stopped: each register key
 * once (recorded as a get of `FINAL_READER`), then every acknowledged key. Returns the
 * acknowledged keys that do not read back with their value.
 */
export async function finalReads(
  options: { raw: RawKV; state: RegisterState; ack: AckState },
): Promise<string[]> {
  const { raw, state, ack } = options;
  const deadlineMs = Date.now() + CHAOS_FINAL_READ_TIMEOUT_MS;
  for (const key of [...state.keys].sort()) {
    let call = 0;
    const got = await readWithRetry(`register ${key}`, deadlineMs, () => {
      call = performance.now();
      return raw.get(key);
    });
    const doneAt = performance.now();
    state.history.push({
      clientId: FINAL_READER,
      kind: "get",
      key,
      value: text(got),
      call,
      ret: doneAt,
      doneAt,
      outcome: "ok",
    });
  }
  const lost: string[] = [];
  for (let at = 0; at < ack.acknowledged.length; at += CHAOS_FINAL_BATCH_KEYS) {
    const part = ack.acknowledged.slice(at, at + CHAOS_FINAL_BATCH_KEYS);
    const pairs = await readWithRetry(
      `acknowledged keys from ${part[0]}`,
      deadlineMs,
      () => raw.batchGet(part),
    );
    const found = new Map(pairs.map((pair) => [fromUtf8(pair.key), fromUtf8(pair.value)]));
    for (const key of part) if (found.get(key) !== key) lost.push(key);
  }
  return lost;
}

/**
 * Leaves out writes of unknown outcome whose value no operation ever observed (no read returned
 * it, no refused CAS reported it, no CAS expected it). Sound for a register whose written
 * values are unique: such a write may be taken to have never happened — placing it anywhere
 * only makes the key hold a value no later operation may see, and an unknown CAS it would have
 * disabled can be placed last instead. It keeps the checker's search small when many writes
 * time out under faults.
 */
export function pruneUnobservedWrites(history: readonly KvOperation[]): KvOperation[] {
  const observed = new Set<string | undefined>();
  for (const op of history) {
    if (op.kind === "get" && op.ret !== Infinity) observed.add(op.value);
    if (op.kind === "cas") observed.add(op.expected);
    if (op.kind === "cas" && op.swapped === false) observed.add(op.previous);
  }
  return history.filter((op) => op.kind === "get" || op.ret !== Infinity || observed.has(op.value));
}

/** The register history's verdict: linearizable or the key that is not, with why. */
export function checkRegisters(history: readonly RecordedOp[]): {
  ok: boolean;
  checked: number;
  detail: string;
} {
  const usable = history.filter((op) => op.outcome !== "fail");
  const pruned = pruneUnobservedWrites(usable);
  const result = checkLinearizable(pruned);
  if (result.ok) return { ok: true, checked: pruned.length, detail: "" };
  return {
    ok: false,
    checked: pruned.length,
    detail: `key ${result.key} has no linearization (or its search ran out of steps):\n` +
      (result.explanation ?? ""),
  };
}
