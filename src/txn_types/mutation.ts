/**
 * A prewrite mutation (TiKV `txn_types::Mutation`): what a transaction does to one key, with
 * the optional assertion the client makes about the key's existence.
 *
 * @module
 */

import { kvrpcpb } from "../../proto/mod.ts";
import { Key } from "./key.ts";
import type { LockType } from "./lock.ts";
import { assert } from "../util/assert.ts";

/** The kinds of mutation a prewrite carries. */
export type MutationType = "Put" | "Delete" | "Lock" | "Insert" | "CheckNotExists";

/** What the client asserts about the key before the mutation. */
export type Assertion = "None" | "Exist" | "NotExist";

/** How strictly assertions are checked (kvproto `AssertionLevel`). */
export type AssertionLevel = "Off" | "Fast" | "Strict";

/** One mutation. `value` is set for Put and Insert only. */
export interface Mutation {
  type: MutationType;
  key: Key;
  value: Uint8Array | null;
  assertion: Assertion;
}

/** A mutation; checks that a value is present exactly for Put and Insert. */
export function newMutation(
  type: MutationType,
  key: Key,
  options: { value?: Uint8Array; assertion?: Assertion } = {},
): Mutation {
  const value = options.value ?? null;
  const needsValue = type === "Put" || type === "Insert";
  assert(
    needsValue === (value !== null),
    `a ${type} mutation ${needsValue ? "needs" : "takes no"} value`,
  );
  return { type, key, value, assertion: options.assertion ?? "None" };
}

/** The lock a mutation leaves; `null` for CheckNotExists, which leaves none. */
export function lockTypeOfMutation(type: MutationType): LockType | null {
  switch (type) {
    case "Put":
    case "Insert":
      return "Put";
    case "Delete":
      return "Delete";
    case "Lock":
      return "Lock";
    case "CheckNotExists":
      return null;
  }
}

/** Whether the mutation must fail when the key has a visible value. */
export function shouldNotExist(type: MutationType): boolean {
  return type === "Insert" || type === "CheckNotExists";
}

/** Whether the mutation writes (Put, Insert, Delete), as opposed to lock or check only. */
export function isWritingMutation(type: MutationType): boolean {
  return type === "Put" || type === "Insert" || type === "Delete";
}

const OP_TO_TYPE = new Map<kvrpcpb.Op, MutationType>([
  [kvrpcpb.Op.Put, "Put"],
  [kvrpcpb.Op.Del, "Delete"],
  [kvrpcpb.Op.Lock, "Lock"],
  [kvrpcpb.Op.Insert, "Insert"],
  [kvrpcpb.Op.CheckNotExists, "CheckNotExists"],
]);

const ASSERTION_FROM_PROTO: Record<number, Assertion> = {
  [kvrpcpb.Assertion.None]: "None",
  [kvrpcpb.Assertion.Exist]: "Exist",
  [kvrpcpb.Assertion.NotExist]: "NotExist",
};

/** The kvproto enum value of an assertion. */
export function assertionToProto(assertion: Assertion): kvrpcpb.Assertion {
  return kvrpcpb.Assertion[assertion];
}

/** The assertion level of a kvproto enum value (unknown values are Off). */
export function assertionLevelFromProto(level: kvrpcpb.AssertionLevel): AssertionLevel {
  if (level === kvrpcpb.AssertionLevel.Strict) return "Strict";
  if (level === kvrpcpb.AssertionLevel.Fast) return "Fast";
  return "Off";
}

/**
 * A mutation from its kvproto form, or a message saying why it is not one Basalt prewrites
 * (an unsupported op such as Rollback or SharedLock is the client's error, not a bug).
 */
export function mutationFromProto(mutation: kvrpcpb.IMutation): Mutation | string {
  const op = mutation.op ?? kvrpcpb.Op.Put;
  const type = OP_TO_TYPE.get(op);
  if (type === undefined) return `mutation op ${kvrpcpb.Op[op] ?? op} is not supported in prewrite`;
  const assertion = ASSERTION_FROM_PROTO[mutation.assertion ?? 0];
  if (assertion === undefined) return `unknown assertion ${mutation.assertion}`;
  const key = Key.fromRaw(mutation.key ?? new Uint8Array());
  const value = type === "Put" || type === "Insert" ? mutation.value ?? new Uint8Array() : null;
  return { type, key, value, assertion };
}
