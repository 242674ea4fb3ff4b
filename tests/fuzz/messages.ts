/**
 * Valid requests for the fuzzer: random messages of any request type of `tikvpb.Tikv` and
 * `pdpb.PD`, shaped by the `.proto` schema and encoded by the generated codecs of `proto/gen`.
 *
 * The schema (field names, types, oneofs, enums) comes from protobufjs's reflection over the
 * `.proto` files of `proto/`, because the static codecs carry no descriptors; the bytes always
 * come from the static codecs, the ones the store decodes with, so a generated request is one
 * the store's own decoder accepts. Values lean towards what a client sends (the standalone
 * region's context, the cluster id, keys from a small pool, timestamps near the store's) so that
 * most requests reach the commands rather than stopping at the first check.
 *
 * A message is a pure function of the random source: the same seed gives the same bytes.
 */
import protobuf from "protobufjs";
import * as generated from "../../proto/mod.ts";
import type { SeededRandom } from "../../src/util/random.ts";

const PROTO_DIR = new URL("../../proto/", import.meta.url).pathname;
const PROTO_FILES = ["kvrpcpb.proto", "tikvpb.proto", "pdpb.proto"];
/** Nesting depth below which messages are filled in; deeper message fields stay unset. */
const MAX_DEPTH = 4;
/** Most elements of a generated repeated field. */
const MAX_REPEATED = 4;

/** Every message name here, loaded once. */
export interface Schema {
  root: protobuf.Root;
  tikv: protobuf.Service;
  pd: protobuf.Service;
  /** `tikvpb.BatchCommandsRequest.Request`: one oneof `cmd` of every BatchCommands member. */
  batchRequest: protobuf.Type;
}

/** Loads the schema from `proto/*.proto`. */
export function loadSchema(): Schema {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO_DIR + target.replace(/^.*\//, "");
  root.loadSync(PROTO_FILES);
  root.resolveAll();
  return {
    root,
    tikv: root.lookupService("tikvpb.Tikv"),
    pd: root.lookupService("pdpb.PD"),
    batchRequest: root.lookupType("tikvpb.BatchCommandsRequest.Request"),
  };
}

interface StaticCodec {
  encode(message: unknown): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

/** The generated (static) codec of a message type, found by its full name. */
export function staticCodec(type: protobuf.Type): StaticCodec {
  // deno-lint-ignore no-explicit-any
  let node: any = generated;
  for (const part of type.fullName.replace(/^\./, "").split(".")) node = node?.[part];
  if (typeof node?.encode !== "function") {
    throw new Error(`no generated codec for ${type.fullName}`);
  }
  return node as StaticCodec;
}

/** What the values of one request are drawn around. */
export interface MessageContext {
  rng: SeededRandom;
  /** Keys for the request (a pool per key space, never the canaries'). */
  keys: readonly Uint8Array[];
  /** A timestamp of the store's; timestamps are drawn just above it. */
  baseTs: bigint;
  /** The cluster id for PD request headers. */
  clusterId: bigint;
}

/** The standalone store's region, as a request's `Context` names it (see src/server/region.ts). */
const STANDALONE_CONTEXT = {
  regionId: 1n,
  regionEpoch: { confVer: 1n, version: 1n },
  peer: { id: 2n, storeId: 1n },
};

const U64_EDGES = [0n, 1n, 2n ** 32n, 2n ** 63n - 1n, 2n ** 64n - 1n];
const I64_EDGES = [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n)];
const U32_EDGES = [0, 1, 0x7fff_ffff, 0xffff_ffff];
const I32_EDGES = [0, -1, 0x7fff_ffff, -0x8000_0000];
const COLUMN_FAMILIES = ["", "", "default", "no_such_cf"];

/** Encodes a random valid message of `type`. */
export function randomMessageBytes(context: MessageContext, type: protobuf.Type): Uint8Array {
  return staticCodec(type).encode(randomMessage(context, type, 0)).finish();
}

/** A random plain object of `type`, in the generated codecs' shape (u64 as bigint). */
export function randomMessage(
  context: MessageContext,
  type: protobuf.Type,
  depth: number,
): Record<string, unknown> {
  const { rng } = context;
  const message: Record<string, unknown> = {};
  const oneofMembers = new Set<string>();
  for (const oneof of type.oneofsArray) {
    // Set at most one member of each oneof, as an encoder of a real client would.
    const names = oneof.fieldsArray.map((field) => field.name);
    if (names.length > 0 && rng.chance(0.7)) oneofMembers.add(rng.pick(names));
    for (const name of names) if (!oneofMembers.has(name)) oneofMembers.add(`-${name}`);
  }
  for (const field of type.fieldsArray) {
    if (oneofMembers.has(`-${field.name}`) || field.map) continue;
    if (field.name === "context" && rng.chance(0.9)) {
      message.context = { ...STANDALONE_CONTEXT };
      continue;
    }
    if (field.name === "header" && field.type.endsWith("RequestHeader") && rng.chance(0.9)) {
      message.header = { clusterId: context.clusterId };
      continue;
    }
    if (!oneofMembers.has(field.name) && rng.chance(0.3)) continue;
    if (field.repeated) {
      const count = rng.int(MAX_REPEATED + 1);
      const values: unknown[] = [];
      for (let i = 0; i < count; i++) {
        const value = randomValue(context, field, depth);
        if (value !== undefined) values.push(value);
      }
      message[field.name] = values;
    } else {
      const value = randomValue(context, field, depth);
      if (value !== undefined) message[field.name] = value;
    }
  }
  return message;
}

function randomValue(context: MessageContext, field: protobuf.Field, depth: number): unknown {
  const { rng } = context;
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    return depth >= MAX_DEPTH ? undefined : randomMessage(context, resolved, depth + 1);
  }
  if (resolved instanceof protobuf.Enum) return rng.pick(Object.values(resolved.values));
  const name = field.name;
  switch (field.type) {
    case "bytes":
      return /key|primary|secondar|start|end|lock/i.test(name)
        ? rng.pick(context.keys)
        : rng.bytes(rng.chance(0.1) ? 300 : rng.int(16));
    case "string":
      return name === "cf" ? rng.pick(COLUMN_FAMILIES) : rng.chance(0.5) ? "" : `s${rng.int(100)}`;
    case "bool":
      return rng.chance(0.5);
    case "uint64":
    case "fixed64":
      return randomU64(context, name);
    case "int64":
    case "sint64":
    case "sfixed64":
      return rng.chance(0.1) ? rng.pick(I64_EDGES) : BigInt(rng.int(2000));
    case "uint32":
    case "fixed32":
      return smallOrEdge(rng, name, U32_EDGES);
    case "int32":
    case "sint32":
    case "sfixed32":
      return smallOrEdge(rng, name, I32_EDGES);
    case "double":
    case "float":
      return rng.next() * 100;
    default:
      return undefined;
  }
}

function randomU64(context: MessageContext, name: string): bigint {
  const { rng } = context;
  if (rng.chance(0.05)) return rng.pick(U64_EDGES);
  if (/ts|version|safePoint/i.test(name)) return context.baseTs + BigInt(rng.int(5000));
  if (name === "regionId") return 1n;
  if (name === "delayTime") return BigInt(rng.int(3));
  return BigInt(rng.int(rng.chance(0.5) ? 4 : 4000));
}

function smallOrEdge(rng: SeededRandom, name: string, edges: readonly number[]): number {
  if (rng.chance(0.05)) return rng.pick(edges);
  if (name === "count") return 1 + rng.int(8);
  return rng.int(rng.chance(0.5) ? 4 : 100);
}
