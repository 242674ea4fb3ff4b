/** String commands, with Redis 7's replies, errors and edge cases. */
import { REDIS_PROTO_MAX_BULK_BYTES } from "../../constants.ts";
import { type CommandContext, type CommandSpec, ERRORS, RedisError, upper } from "./command.ts";
import { expireAtOf, type ExpiryUnit } from "./expiry_args.ts";
import { type RecordValue, RedisType } from "./layout.ts";
import { addFloats, INT64_MAX, INT64_MIN, parseInt64 } from "./numbers.ts";
import { OK, type Reply } from "./resp.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** The live string record of `key`, null when absent; WRONGTYPE for another type. */
export async function stringRecord(
  ctx: CommandContext,
  key: Uint8Array,
): Promise<RecordValue | null> {
  const record = await ctx.ks.record(key);
  if (record !== null && record.type !== RedisType.String) throw new RedisError(ERRORS.wrongType);
  return record;
}

async function readString(ctx: CommandContext, key: Uint8Array): Promise<Uint8Array | null> {
  const record = await stringRecord(ctx, key);
  if (record === null) ctx.gateway.stats.keyspaceMisses++;
  else ctx.gateway.stats.keyspaceHits++;
  return record?.value ?? null;
}

function checkSize(bytes: number): void {
  if (bytes > REDIS_PROTO_MAX_BULK_BYTES) throw new RedisError(ERRORS.tooBig);
}

/** SET's options, parsed as Redis 7's `parseExtendedStringArgumentsOrReply` does. */
interface SetOptions {
  condition: "NX" | "XX" | null;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  expiry: { unit: ExpiryUnit; value: Uint8Array } | null;
}

function parseSetOptions(args: Uint8Array[], from: number, command: "SET" | "GETEX"): SetOptions {
  const options: SetOptions = {
    condition: null,
    get: false,
    keepTtl: false,
    persist: false,
    expiry: null,
  };
  for (let at = from; at < args.length; at++) {
    const option = upper(args[at]!);
    const next = args[at + 1];
    const noExpiry = options.expiry === null && !options.keepTtl && !options.persist;
    if (command === "SET" && (option === "NX" || option === "XX") && options.condition === null) {
      options.condition = option;
    } else if (command === "SET" && option === "GET" && !options.get) {
      options.get = true;
    } else if (command === "SET" && option === "KEEPTTL" && noExpiry) {
      options.keepTtl = true;
    } else if (command === "GETEX" && option === "PERSIST" && noExpiry) {
      options.persist = true;
    } else if (
      (option === "EX" || option === "PX" || option === "EXAT" || option === "PXAT") &&
      noExpiry && next !== undefined
    ) {
      options.expiry = { unit: option, value: next };
      at++;
    } else {
      throw new RedisError(ERRORS.syntax);
    }
  }
  return options;
}

async function set(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const key = args[1]!;
  const options = parseSetOptions(args, 3, "SET");
  const expireAtMs = options.expiry === null
    ? 0
    : expireAtOf(options.expiry.unit, options.expiry.value, {
      nowMs: ctx.ks.nowMs,
      command: "set",
    });
  const record = options.get ? await stringRecord(ctx, key) : await ctx.ks.record(key);
  const old = options.get ? (record?.value ?? null) : undefined;
  if (
    (options.condition === "NX" && record !== null) ||
    (options.condition === "XX" && record === null)
  ) {
    return options.get ? old! : null;
  }
  const keep = options.keepTtl && record !== null ? record.expireAtMs : expireAtMs;
  await ctx.ks.setString(key, args[2]!, keep);
  return options.get ? old! : OK;
}

async function getex(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const key = args[1]!;
  const options = parseSetOptions(args, 2, "GETEX");
  const expireAtMs = options.expiry === null ? 0 : expireAtOf(
    options.expiry.unit,
    options.expiry.value,
    { nowMs: ctx.ks.nowMs, command: "getex" },
  );
  const record = await stringRecord(ctx, key);
  if (record === null) return null;
  if (options.expiry !== null && expireAtMs <= ctx.ks.nowMs) {
    await ctx.ks.delete(key);
  } else if (options.expiry !== null) {
    ctx.ks.setExpiry(key, record, expireAtMs);
  } else if (options.persist && record.expireAtMs !== 0) {
    ctx.ks.setExpiry(key, record, 0);
  }
  return record.value;
}

async function incrementBy(
  ctx: CommandContext,
  key: Uint8Array,
  increment: bigint,
): Promise<Reply> {
  const record = await stringRecord(ctx, key);
  const current = record === null ? 0n : parseInt64(record.value);
  if (current === null) throw new RedisError(ERRORS.notInteger);
  const next = current + increment;
  if (next > INT64_MAX || next < INT64_MIN) throw new RedisError(ERRORS.overflow);
  await ctx.ks.setString(key, encoder.encode(String(next)), record?.expireAtMs ?? 0);
  return Number.isSafeInteger(Number(next)) ? Number(next) : next;
}

function incrementArg(arg: Uint8Array): bigint {
  const value = parseInt64(arg);
  if (value === null) throw new RedisError(ERRORS.notInteger);
  return value;
}

async function incrbyfloat(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const key = args[1]!;
  const record = await stringRecord(ctx, key);
  const sum = addFloats(
    record === null ? null : decoder.decode(record.value),
    decoder.decode(args[2]!),
  );
  if ("error" in sum) throw new RedisError(sum.error);
  const bytes = encoder.encode(sum.text);
  await ctx.ks.setString(key, bytes, record?.expireAtMs ?? 0);
  return bytes;
}

async function getrange(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  let start = incrementArg(args[2]!);
  let end = incrementArg(args[3]!);
  const record = await stringRecord(ctx, args[1]!);
  if (record === null) return EMPTY;
  const length = BigInt(record.value.length);
  if (start < 0n && end < 0n && start > end) return EMPTY;
  if (start < 0n) start += length;
  if (end < 0n) end += length;
  if (start < 0n) start = 0n;
  if (end < 0n) end = 0n;
  if (end >= length) end = length - 1n;
  if (start > end || length === 0n) return EMPTY;
  return record.value.subarray(Number(start), Number(end) + 1);
}

async function setrange(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const key = args[1]!;
  const offset = incrementArg(args[2]!);
  const value = args[3]!;
  if (offset < 0n) throw new RedisError("ERR offset is out of range");
  const record = await stringRecord(ctx, key);
  const current = record?.value ?? EMPTY;
  if (value.length === 0) return current.length;
  checkSize(Number(offset) + value.length);
  const at = Number(offset);
  const next = new Uint8Array(Math.max(current.length, at + value.length));
  next.set(current);
  next.set(value, at);
  await ctx.ks.setString(key, next, record?.expireAtMs ?? 0);
  return next.length;
}

async function append(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const key = args[1]!;
  const record = await stringRecord(ctx, key);
  const current = record?.value ?? EMPTY;
  checkSize(current.length + args[2]!.length);
  const next = new Uint8Array(current.length + args[2]!.length);
  next.set(current);
  next.set(args[2]!, current.length);
  await ctx.ks.setString(key, next, record?.expireAtMs ?? 0);
  return next.length;
}

async function setWithExpiry(
  ctx: CommandContext,
  args: Uint8Array[],
  how: { unit: ExpiryUnit; command: string },
): Promise<Reply> {
  const expireAtMs = expireAtOf(how.unit, args[2]!, { nowMs: ctx.ks.nowMs, command: how.command });
  await ctx.ks.setString(args[1]!, args[3]!, expireAtMs);
  return OK;
}

async function mset(ctx: CommandContext, args: Uint8Array[], onlyNew: boolean): Promise<Reply> {
  if (args.length % 2 === 0) {
    throw new RedisError(
      `ERR wrong number of arguments for '${onlyNew ? "msetnx" : "mset"}' command`,
    );
  }
  if (onlyNew) {
    for (let at = 1; at < args.length; at += 2) {
      if ((await ctx.ks.record(args[at]!)) !== null) return 0;
    }
  }
  for (let at = 1; at < args.length; at += 2) await ctx.ks.setString(args[at]!, args[at + 1]!, 0);
  return onlyNew ? 1 : OK;
}

const string = (spec: Omit<CommandSpec, "kind" | "group" | "since"> & { since?: string }) =>
  ({ kind: "data", group: "string", since: "1.0.0", ...spec }) as CommandSpec;

/** The string commands. */
export const STRING_COMMANDS: CommandSpec[] = [
  string({
    name: "get",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the string value of a key.",
    run: (ctx, args) => readString(ctx, args[1]!),
  }),
  string({
    name: "set",
    arity: -3,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    summary: "Sets the string value of a key, ignoring its type.",
    run: set,
  }),
  string({
    name: "setnx",
    arity: 3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary: "Set the string value of a key only when the key doesn't exist.",
    run: async (ctx, args) => {
      if ((await ctx.ks.record(args[1]!)) !== null) return 0;
      await ctx.ks.setString(args[1]!, args[2]!, 0);
      return 1;
    },
  }),
  string({
    name: "setex",
    arity: 4,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    summary: "Sets the string value and expiration time of a key.",
    since: "2.0.0",
    run: (ctx, args) => setWithExpiry(ctx, args, { unit: "EX", command: "setex" }),
  }),
  string({
    name: "psetex",
    arity: 4,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    summary: "Sets both string value and expiration time in milliseconds of a key.",
    since: "2.6.0",
    run: (ctx, args) => setWithExpiry(ctx, args, { unit: "PX", command: "psetex" }),
  }),
  string({
    name: "getset",
    arity: 3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the previous string value of a key after setting it to a new value.",
    run: async (ctx, args) => {
      const record = await stringRecord(ctx, args[1]!);
      await ctx.ks.setString(args[1]!, args[2]!, 0);
      return record?.value ?? null;
    },
  }),
  string({
    name: "getdel",
    arity: 2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the string value of a key after deleting the key.",
    since: "6.2.0",
    run: async (ctx, args) => {
      const record = await stringRecord(ctx, args[1]!);
      if (record === null) return null;
      await ctx.ks.delete(args[1]!);
      return record.value;
    },
  }),
  string({
    name: "getex",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the string value of a key after setting its expiration time.",
    since: "6.2.0",
    run: getex,
  }),
  string({
    name: "mget",
    arity: -2,
    flags: ["readonly", "fast"],
    keys: [1, -1, 1],
    summary: "Atomically returns the string values of one or more keys.",
    run: async (ctx, args) => {
      const out: Reply[] = [];
      for (let at = 1; at < args.length; at++) {
        const record = await ctx.ks.record(args[at]!);
        out.push(record !== null && record.type === RedisType.String ? record.value : null);
      }
      return out;
    },
  }),
  string({
    name: "mset",
    arity: -3,
    flags: ["write", "denyoom"],
    keys: [1, -1, 2],
    summary: "Atomically creates or modifies the string values of one or more keys.",
    since: "1.0.1",
    run: (ctx, args) => mset(ctx, args, false),
  }),
  string({
    name: "msetnx",
    arity: -3,
    flags: ["write", "denyoom"],
    keys: [1, -1, 2],
    summary:
      "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    since: "1.0.1",
    run: (ctx, args) => mset(ctx, args, true),
  }),
  string({
    name: "append",
    arity: 3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    since: "2.0.0",
    run: append,
  }),
  string({
    name: "strlen",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Returns the length of a string value.",
    since: "2.2.0",
    run: async (ctx, args) => (await stringRecord(ctx, args[1]!))?.value.length ?? 0,
  }),
  string({
    name: "getrange",
    arity: 4,
    flags: ["readonly"],
    keys: [1, 1, 1],
    summary: "Returns a substring of the string stored at a key.",
    since: "2.4.0",
    run: getrange,
  }),
  string({
    name: "setrange",
    arity: 4,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    summary:
      "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    since: "2.2.0",
    run: setrange,
  }),
  string({
    name: "incr",
    arity: 2,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary:
      "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    run: (ctx, args) => incrementBy(ctx, args[1]!, 1n),
  }),
  string({
    name: "decr",
    arity: 2,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary:
      "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    run: (ctx, args) => incrementBy(ctx, args[1]!, -1n),
  }),
  string({
    name: "incrby",
    arity: 3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary:
      "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    run: (ctx, args) => incrementBy(ctx, args[1]!, incrementArg(args[2]!)),
  }),
  string({
    name: "decrby",
    arity: 3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary:
      "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    run: (ctx, args) => {
      const decrement = incrementArg(args[2]!);
      if (decrement === INT64_MIN) throw new RedisError("ERR decrement would overflow");
      return incrementBy(ctx, args[1]!, -decrement);
    },
  }),
  string({
    name: "incrbyfloat",
    arity: 3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    summary:
      "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    since: "2.6.0",
    run: incrbyfloat,
  }),
];
