/** Hash commands, with Redis 7's replies and errors. */
import { REDIS_MAX_FIELD_BYTES } from "../../constants.ts";
import { type CommandContext, type CommandSpec, ERRORS, RedisError } from "./command.ts";
import { globMatch } from "./glob.ts";
import { prefixEnd } from "./keyspace.ts";
import { fieldKey, fieldPrefix, type RecordValue, RedisType } from "./layout.ts";
import { INT64_MAX, INT64_MIN, parseInt64 } from "./numbers.ts";
import { MapReply, type Reply } from "./resp.ts";
import { scanCursor, scanOptions } from "./keys.ts";

const encoder = new TextEncoder();

/**
 * Hashes up to this many fields answer HSCAN in one reply with cursor 0, whatever COUNT says,
 * as Redis does for a hash small enough to be a listpack (`hash-max-listpack-entries`).
 */
const HSCAN_WHOLE_MAX_FIELDS = 128;

/** The live hash record of `key`, null when absent; WRONGTYPE for another type. */
async function hashRecord(ctx: CommandContext, key: Uint8Array): Promise<RecordValue | null> {
  const record = await ctx.ks.record(key);
  if (record !== null && record.type !== RedisType.Hash) throw new RedisError(ERRORS.wrongType);
  return record;
}

function checkField(field: Uint8Array): Uint8Array {
  if (field.length > REDIS_MAX_FIELD_BYTES) {
    throw new RedisError(
      `ERR hash field too long (a Basalt limit: ${REDIS_MAX_FIELD_BYTES} bytes)`,
    );
  }
  return field;
}

/** Field storage keys named by `args` from `from` on, every `step`. */
const fieldKeys = (from: number, step: number) => (args: Uint8Array[]) => {
  const out: Uint8Array[] = [];
  for (let at = from; at < args.length; at += step) out.push(fieldKey(args[1]!, args[at]!));
  return out;
};

async function hset(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  if (args.length % 2 !== 0) {
    throw new RedisError(`ERR wrong number of arguments for 'hset' command`);
  }
  const record = await hashRecord(ctx, args[1]!);
  const changes: [Uint8Array, Uint8Array][] = [];
  for (let at = 2; at < args.length; at += 2) changes.push([checkField(args[at]!), args[at + 1]!]);
  return (await ctx.ks.updateHash(args[1]!, record, changes)).added;
}

async function hdel(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const record = await hashRecord(ctx, args[1]!);
  if (record === null) return 0;
  const changes = args.slice(2).map((field) => [field, null] as [Uint8Array, null]);
  return (await ctx.ks.updateHash(args[1]!, record, changes)).removed;
}

async function hget(
  ctx: CommandContext,
  key: Uint8Array,
  field: Uint8Array,
): Promise<Uint8Array | null> {
  if ((await hashRecord(ctx, key)) === null) return null;
  return await ctx.ks.readField(key, field);
}

async function hincrby(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const [, key, field, incrementArg] = args as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const increment = parseInt64(incrementArg);
  if (increment === null) throw new RedisError(ERRORS.notInteger);
  const record = await hashRecord(ctx, key);
  const stored = record === null ? null : await ctx.ks.readField(key, field);
  const current = stored === null ? 0n : parseInt64(stored);
  if (current === null) throw new RedisError("ERR hash value is not an integer");
  const next = current + increment;
  if (next > INT64_MAX || next < INT64_MIN) throw new RedisError(ERRORS.overflow);
  await ctx.ks.updateHash(key, record, [[checkField(field), encoder.encode(String(next))]]);
  return Number.isSafeInteger(Number(next)) ? Number(next) : next;
}

/** The field names and values of `key` (empty when absent). */
async function entries(ctx: CommandContext, key: Uint8Array): Promise<[Uint8Array, Uint8Array][]> {
  if ((await hashRecord(ctx, key)) === null) return [];
  const prefix = fieldPrefix(key);
  const pairs = await ctx.ks.hashFields(key);
  return pairs.map((pair) => [pair.key.subarray(prefix.length), pair.value]);
}

async function hscan(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const key = args[1]!;
  const after = scanCursor(ctx, args[2]!, key);
  const options = scanOptions(args, { from: 3, allowType: false });
  const record = await hashRecord(ctx, key);
  if (record === null) return ["0", []];
  const prefix = fieldPrefix(key);
  const whole = record.fields <= HSCAN_WHOLE_MAX_FIELDS;
  const start = after === null ? prefix : Uint8Array.of(...after, 0);
  const limit = whole ? HSCAN_WHOLE_MAX_FIELDS : options.count;
  const page = await ctx.ks.txn.scan(start, prefixEnd(prefix), { limit });
  const out: Uint8Array[] = [];
  for (const pair of page) {
    const field = pair.key.subarray(prefix.length);
    if (options.match !== null && !globMatch(options.match, field)) continue;
    out.push(field, pair.value);
  }
  const last = page.length === limit && !whole ? page[page.length - 1]!.key : null;
  const next = last === null ? 0 : ctx.gateway.saveCursor({ key, after: last });
  return [String(next), out];
}

const hash = (spec: Omit<CommandSpec, "kind" | "group" | "since"> & { since?: string }) =>
  ({ kind: "data", group: "hash", since: "2.0.0", ...spec }) as CommandSpec;

/** The hash commands. */
export const HASH_COMMANDS: CommandSpec[] = [
  hash({
    name: "hset",
    arity: -4,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary: "Creates or modifies the value of a field in a hash.",
    prefetch: fieldKeys(2, 2),
    run: hset,
  }),
  hash({
    name: "hget",
    arity: 3,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the value of a field in a hash.",
    prefetch: fieldKeys(2, 1),
    run: (ctx, args) => hget(ctx, args[1]!, args[2]!),
  }),
  hash({
    name: "hmget",
    arity: -3,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the values of all fields in a hash.",
    prefetch: fieldKeys(2, 1),
    run: async (ctx, args) => {
      const out: Reply[] = [];
      for (const field of args.slice(2)) out.push(await hget(ctx, args[1]!, field));
      return out;
    },
  }),
  hash({
    name: "hdel",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    summary:
      "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
    prefetch: fieldKeys(2, 1),
    run: hdel,
  }),
  hash({
    name: "hexists",
    arity: 3,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Determines whether a field exists in a hash.",
    prefetch: fieldKeys(2, 1),
    run: async (ctx, args) => (await hget(ctx, args[1]!, args[2]!)) === null ? 0 : 1,
  }),
  hash({
    name: "hlen",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the number of fields in a hash.",
    run: async (ctx, args) => (await hashRecord(ctx, args[1]!))?.fields ?? 0,
  }),
  hash({
    name: "hgetall",
    arity: 2,
    flags: ["readonly"],
    keys: [1, 1, 1],
    summary: "Returns all fields and values in a hash.",
    run: async (ctx, args) => new MapReply((await entries(ctx, args[1]!)).flat()),
  }),
  hash({
    name: "hkeys",
    arity: 2,
    flags: ["readonly"],
    keys: [1, 1, 1],
    summary: "Returns all fields in a hash.",
    run: async (ctx, args) => (await entries(ctx, args[1]!)).map(([field]) => field),
  }),
  hash({
    name: "hvals",
    arity: 2,
    flags: ["readonly"],
    keys: [1, 1, 1],
    summary: "Returns all values in a hash.",
    run: async (ctx, args) => (await entries(ctx, args[1]!)).map(([, value]) => value),
  }),
  hash({
    name: "hincrby",
    arity: 4,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary:
      "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
    prefetch: fieldKeys(2, 1),
    run: hincrby,
  }),
  hash({
    name: "hscan",
    arity: -3,
    flags: ["readonly"],
    keys: [1, 1, 1],
    since: "2.8.0",
    summary: "Iterates over fields and values of a hash.",
    run: hscan,
  }),
];
