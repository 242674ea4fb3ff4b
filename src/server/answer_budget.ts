/**
 * The byte budget of an answer: every loop that gathers entries for a response (a scan's
 * pairs, a batch get's values, a key's MVCC versions) takes each entry's bytes from it *before*
 * keeping the entry, and stops when the budget refuses. So no answer grows past
 * ANSWER_MAX_BYTES, and memory held for one request is bounded by the budget plus the one entry
 * in hand, however much the request asks for.
 *
 * Budgets nest: the sub-requests of one BatchCommands message each have their own budget
 * (ANSWER_MAX_BYTES) drawing on one shared by the message (BATCH_COMMANDS_MAX_ANSWER_BYTES), so
 * a message of many small requests cannot make a huge wave of answers either, nor gather a
 * huge amount of garbage in refused ones (see `refusal`).
 *
 * What an exhausted budget means is decided per command and said where it is used; all of
 * them answer with `AnswerTooLarge` rather than a short list. TiKV bounds none of these answers
 * by size, and its clients (client-go's raw and snapshot scanners, Basalt's `RawKV`) read a
 * page shorter than its `limit` as "this region has no more keys", so a silently truncated scan
 * would look complete and lose the rest of the region. An error is seen and can be retried
 * with a smaller limit or fewer keys.
 */
import { ANSWER_ENTRY_OVERHEAD_BYTES, ANSWER_MAX_BYTES } from "../constants.ts";
import type { RequestFailure } from "./failure.ts";

/** Bytes an answer may still gather. */
export class AnswerBudget {
  #usedBytes = 0;
  /** Whether the last refusal came from the shared budget (a BatchCommands message's). */
  #refusedByShared = false;

  /**
   * @param limitBytes most bytes this budget gives out.
   * @param shared a budget every take also draws on (a BatchCommands message's), or null.
   */
  constructor(readonly limitBytes: number, readonly shared: AnswerBudget | null = null) {
    if (!(Number.isSafeInteger(limitBytes) && limitBytes > 0)) {
      throw new RangeError(`answer budget of ${limitBytes} bytes`);
    }
  }

  /** Bytes taken so far. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Bytes this budget would still give (the shared one's remainder included). */
  leftBytes(): number {
    const own = this.limitBytes - this.#usedBytes;
    return this.shared === null ? own : Math.min(own, this.shared.leftBytes());
  }

  /** Takes `bytes`; false, taking nothing, when this budget or the shared one would pass its limit. */
  take(bytes: number): boolean {
    if (!(Number.isSafeInteger(bytes) && bytes >= 0)) throw new RangeError(`take(${bytes})`);
    if (this.#usedBytes + bytes > this.limitBytes) {
      this.#refusedByShared = false;
      return false;
    }
    if (this.shared !== null && !this.shared.take(bytes)) {
      this.#refusedByShared = true;
      return false;
    }
    this.#usedBytes += bytes;
    return true;
  }

  /** Takes the bytes of one entry (key, value and its framing); false as `take`. */
  takeEntry(keyBytes: number, valueBytes: number): boolean {
    return this.take(keyBytes + valueBytes + ANSWER_ENTRY_OVERHEAD_BYTES);
  }

  /**
   * The failure of `rpc` whose budget refused after `entries` entries. The message says which
   * limit was reached and what to ask instead. What was taken stays taken: the bytes were
   * read and copied, and are garbage only once collected, so a BatchCommands message's budget
   * bounds the bytes its sub-requests gather, answered or not, and a message whose budget is
   * spent refuses its remaining sub-requests at their first entry.
   */
  refusal(rpc: string, entries: number): Extract<RequestFailure, { code: "AnswerTooLarge" }> {
    const shared = this.#refusedByShared && this.shared !== null;
    const limitBytes = shared ? this.shared!.limitBytes : this.limitBytes;
    return { code: "AnswerTooLarge", rpc, entries, limitBytes, shared };
  }
}

/** The budget of one unary request's answer. */
export function unaryBudget(): AnswerBudget {
  return new AnswerBudget(ANSWER_MAX_BYTES);
}
