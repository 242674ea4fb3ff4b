/**
 * Helpers for action tests, in the spirit of TiKV's `must_prewrite_put` / `must_commit`
 * family: each runs one action against a fresh snapshot of an `MvccFixture`, writes its
 * modifications as one batch when it succeeds, and returns the result. Used only by tests.
 *
 * @module
 */

import type { MvccResult } from "../../mvcc/errors.ts";
import { PointGetter, type PointGetterOptions } from "../../mvcc/point_getter.ts";
import { MvccReader } from "../../mvcc/reader.ts";
import { key, MvccFixture } from "../../mvcc/test_support.ts";
import { MvccTxn } from "../../mvcc/txn.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import {
  type Assertion,
  type AssertionLevel,
  type MutationType,
  newMutation,
} from "../../txn_types/mutation.ts";
import type { TimeStamp } from "../../txn_types/timestamp.ts";
import {
  type PessimisticAction,
  prewrite,
  prewriteMutations,
  type PrewriteRequestArgs,
  type PrewriteResult,
  type TransactionKind,
} from "./prewrite.ts";

export { key, MvccFixture };

/**
 * Runs `action` with a new MvccTxn at `startTs` on a fresh snapshot; applies the txn when the
 * action succeeds. Returns the result and the txn (for its side lists).
 */
export function run<T>(
  fx: MvccFixture,
  startTs: TimeStamp,
  action: (txn: MvccTxn, reader: MvccReader) => MvccResult<T>,
): { result: MvccResult<T>; txn: MvccTxn } {
  using snapshot = fx.snapshot();
  using reader = new MvccReader(snapshot);
  const txn = new MvccTxn(startTs);
  const result = action(txn, reader);
  if (result.ok) fx.write(txn);
  return { result, txn };
}

/** Options of {@linkcode prewriteKey}. */
export interface PrewriteKeyOptions {
  type?: MutationType;
  value?: string | Uint8Array;
  primary?: string;
  startTs: TimeStamp;
  ttlMs?: bigint;
  /** Pessimistic when set. */
  forUpdateTs?: TimeStamp;
  pessimisticAction?: PessimisticAction;
  expectedForUpdateTs?: TimeStamp;
  skipConstraintCheck?: boolean;
  isRetryRequest?: boolean;
  assertion?: Assertion;
  assertionLevel?: AssertionLevel;
  /** Async commit: the secondaries (on the primary) or [] (on a secondary). */
  secondaries?: string[];
  onePc?: boolean;
  maxCommitTs?: TimeStamp;
  minCommitTs?: TimeStamp;
  maxTs?: TimeStamp;
}

/** Prewrites one key through the single-key action. */
export function prewriteKey(fx: MvccFixture, rawKey: string, options: PrewriteKeyOptions) {
  const type = options.type ?? (options.value !== undefined ? "Put" : "Delete");
  const value = options.value === undefined
    ? undefined
    : typeof options.value === "string"
    ? utf8(options.value)
    : options.value;
  const mutation = newMutation(type, key(rawKey), {
    ...(value !== undefined ? { value } : {}),
    assertion: options.assertion ?? "None",
  });
  const kind: TransactionKind = options.forUpdateTs !== undefined
    ? { type: "Pessimistic", forUpdateTs: options.forUpdateTs }
    : { type: "Optimistic", skipConstraintCheck: options.skipConstraintCheck ?? false };
  const secondaryKeys = options.secondaries?.map(utf8) ?? null;
  const maxCommitTs = options.maxCommitTs ?? 0n;
  return run(fx, options.startTs, (txn, reader) =>
    prewrite(txn, reader, {
      props: {
        startTs: options.startTs,
        kind,
        commitKind: options.onePc === true
          ? { type: "OnePc", maxCommitTs }
          : secondaryKeys !== null
          ? { type: "Async", maxCommitTs }
          : { type: "TwoPc" },
        primary: utf8(options.primary ?? rawKey),
        txnSize: 1n,
        lockTtlMs: options.ttlMs ?? 3000n,
        minCommitTs: options.minCommitTs ?? 0n,
        isRetryRequest: options.isRetryRequest ?? false,
        assertionLevel: options.assertionLevel ?? "Off",
        txnSource: 0n,
        maxTs: options.maxTs ?? 0n,
      },
      mutation,
      secondaryKeys,
      pessimisticAction: options.pessimisticAction ??
        (options.forUpdateTs !== undefined ? "DoPessimisticCheck" : "SkipPessimisticCheck"),
      expectedForUpdateTs: options.expectedForUpdateTs ?? null,
    }));
}

/** A request for {@linkcode prewriteRequest} with defaults. */
export function request(
  init:
    & Partial<PrewriteRequestArgs>
    & Pick<PrewriteRequestArgs, "startTs" | "primary" | "mutations">,
): PrewriteRequestArgs {
  return {
    kind: { type: "Optimistic", skipConstraintCheck: false },
    lockTtlMs: 3000n,
    txnSize: BigInt(init.mutations.length),
    minCommitTs: 0n,
    maxCommitTs: 0n,
    secondaryKeys: null,
    tryOnePc: false,
    isRetryRequest: false,
    assertionLevel: "Off",
    txnSource: 0n,
    maxTs: 0n,
    ...init,
  };
}

/** Puts of `pairs` ([key, value]) as optimistic prewrite mutations. */
export function puts(...pairs: [string, string][]) {
  return pairs.map(([k, v]) => ({
    mutation: newMutation("Put", key(k), { value: utf8(v) }),
    pessimisticAction: "SkipPessimisticCheck" as const,
    expectedForUpdateTs: null,
  }));
}

/** Runs a whole prewrite request. */
export function prewriteRequest(
  fx: MvccFixture,
  args: PrewriteRequestArgs,
): { result: MvccResult<PrewriteResult>; txn: MvccTxn } {
  return run(fx, args.startTs, (txn, reader) => prewriteMutations(txn, reader, args));
}

/** A point read as text: the value, null, or `locked@<ts>` / the error kind. */
export function read(fx: MvccFixture, rawKey: string, options: PointGetterOptions): string | null {
  using snapshot = fx.snapshot();
  using getter = new PointGetter(snapshot, options);
  const result = getter.get(key(rawKey));
  if (result.ok) return result.value === null ? null : fromUtf8(result.value);
  if (result.error.kind === "KeyIsLocked") return `locked@${result.error.lockInfo.lockVersion}`;
  return result.error.kind;
}

/** The error kind of a failed result, or "ok". */
export function kindOf(result: MvccResult<unknown>): string {
  return result.ok ? "ok" : result.error.kind;
}
