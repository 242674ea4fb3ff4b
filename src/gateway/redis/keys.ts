/** Generic key commands (DEL, EXPIRE, RENAME, SCAN …), with Redis 7's replies and errors. */
import {
  REDIS_KEYS_MAX_KEYS,
  REDIS_SCAN_MAX_COUNT,
  REDIS_SCAN_PAGE_KEYS,
} from "../../constants.ts";
import {
  type CommandContext,
  type CommandSpec,
  ERRORS,
  RedisError,
  text,
  upper,
} from "./command.ts";
import { checkedTime } from "./expiry_args.ts";
import { globMatch, matchesAll } from "./glob.ts";
import { prefixEnd } from "./keyspace.ts";
import {
  decodeRecord,
  keyOfRecord,
  recordRange,
  type RecordValue,
  REDIS_PREFIX,
  RedisType,
} from "./layout.ts";
import { INT64_MAX, INT64_MIN, parseInt64 } from "./numbers.ts";
import { OK, type Reply, SimpleString } from "./resp.ts";
import type { KvPair } from "../../client/mod.ts";
import { bytesEqual } from "../../util/bytes.ts";

const TYPE_NAMES: Record<number, string> = {
  [RedisType.String]: "string",
  [RedisType.Hash]: "hash",
};

/** The pairs of records in [start, end), page by page; `visit` returns false to stop. */
export async function walkRecords(
  ctx: CommandContext,
  how: { start?: Uint8Array; limit?: number; keyOnly?: boolean },
  visit: (pair: KvPair) => boolean | void,
): Promise<Uint8Array | null> {
  const range = recordRange();
  let cursor = how.start ?? range.start;
  let left = how.limit ?? Infinity;
  while (left > 0) {
    const ask = Math.min(REDIS_SCAN_PAGE_KEYS, left);
    const page = await ctx.ks.txn.scan(cursor, range.end, { limit: ask, keyOnly: how.keyOnly });
    for (const pair of page) {
      left--;
      if (visit(pair) === false) return pair.key;
    }
    if (page.length < ask) return null;
    const last = page[page.length - 1]!.key;
    cursor = new Uint8Array(last.length + 1);
    cursor.set(last);
    if (left === 0) return last;
  }
  return null;
}

async function deleteKeys(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  let deleted = 0;
  for (let at = 1; at < args.length; at++) if (await ctx.ks.delete(args[at]!)) deleted++;
  return deleted;
}

/** EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT as Redis 7's `expireGenericCommand`. */
async function expire(
  ctx: CommandContext,
  args: Uint8Array[],
  how: { seconds: boolean; relative: boolean; command: string },
): Promise<Reply> {
  const flags = new Set<string>();
  for (const arg of args.slice(3)) {
    const flag = upper(arg);
    if (!["NX", "XX", "GT", "LT"].includes(flag)) {
      throw new RedisError(`ERR Unsupported option ${text(arg)}`);
    }
    flags.add(flag);
  }
  if (flags.has("NX") && (flags.has("XX") || flags.has("GT") || flags.has("LT"))) {
    throw new RedisError("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (flags.has("GT") && flags.has("LT")) {
    throw new RedisError("ERR GT and LT options at the same time are not compatible");
  }
  let when = parseInt64(args[2]!);
  if (when === null) throw new RedisError(ERRORS.notInteger);
  const invalid = () => new RedisError(`ERR invalid expire time in '${how.command}' command`);
  if (how.seconds) {
    if (when > INT64_MAX / 1000n || when < INT64_MIN / 1000n) throw invalid();
    when *= 1000n;
  }
  const base = how.relative ? BigInt(ctx.ks.nowMs) : 0n;
  if (when > INT64_MAX - base) throw invalid();
  when += base;
  const key = args[1]!;
  const record = await ctx.ks.record(key);
  if (record === null) return 0;
  const current = record.expireAtMs === 0 ? null : BigInt(record.expireAtMs);
  if (flags.has("NX") && current !== null) return 0;
  if (flags.has("XX") && current === null) return 0;
  if (flags.has("GT") && (current === null || when <= current)) return 0;
  if (flags.has("LT") && current !== null && when >= current) return 0;
  if (when <= BigInt(ctx.ks.nowMs)) {
    await ctx.ks.delete(key);
    return 1;
  }
  ctx.ks.setExpiry(key, record, checkedTime(when, invalid));
  return 1;
}

async function ttl(
  ctx: CommandContext,
  key: Uint8Array,
  how: { ms: boolean; absolute: boolean },
): Promise<Reply> {
  const record = await ctx.ks.record(key);
  if (record === null) return -2;
  if (record.expireAtMs === 0) return -1;
  if (how.absolute) return how.ms ? record.expireAtMs : Math.floor(record.expireAtMs / 1000);
  const left = Math.max(0, record.expireAtMs - ctx.ks.nowMs);
  return how.ms ? left : Math.floor((left + 500) / 1000);
}

async function rename(ctx: CommandContext, args: Uint8Array[], onlyNew: boolean): Promise<Reply> {
  const [, from, to] = args as [Uint8Array, Uint8Array, Uint8Array];
  const record = await ctx.ks.record(from);
  if (record === null) throw new RedisError(ERRORS.noSuchKey);
  if (bytesEqual(from, to)) {
    return onlyNew ? 0 : OK;
  }
  if (onlyNew && (await ctx.ks.record(to)) !== null) return 0;
  await ctx.ks.copy(from, to, record);
  await ctx.ks.delete(from);
  return onlyNew ? 1 : OK;
}

async function copy(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const [, from, to] = args as [Uint8Array, Uint8Array, Uint8Array];
  let replace = false;
  for (let at = 3; at < args.length; at++) {
    const option = upper(args[at]!);
    if (option === "REPLACE") replace = true;
    else if (option === "DB" && at + 1 < args.length) {
      const db = parseInt64(args[++at]!);
      if (db === null) throw new RedisError(ERRORS.notInteger);
      if (db !== 0n) throw new RedisError(ERRORS.dbIndex);
    } else throw new RedisError(ERRORS.syntax);
  }
  if (bytesEqual(from, to)) {
    throw new RedisError("ERR source and destination objects are the same");
  }
  const record = await ctx.ks.record(from);
  if (record === null) return 0;
  if (!replace && (await ctx.ks.record(to)) !== null) return 0;
  await ctx.ks.copy(from, to, record);
  return 1;
}

function liveRecord(ctx: CommandContext, pair: KvPair): RecordValue | null {
  const record = decodeRecord(pair.value);
  return ctx.ks.expired(record) ? null : record;
}

async function keys(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const pattern = args[1]!;
  const all = matchesAll(pattern);
  const out: Uint8Array[] = [];
  let tooMany = false;
  await walkRecords(ctx, {}, (pair) => {
    const key = keyOfRecord(pair.key);
    if (liveRecord(ctx, pair) === null || !(all || globMatch(pattern, key))) return;
    if (out.length >= REDIS_KEYS_MAX_KEYS) return tooMany = true, false;
    out.push(key);
  });
  if (tooMany) {
    throw new RedisError(
      `ERR KEYS would return more than ${REDIS_KEYS_MAX_KEYS} keys (a Basalt limit); use SCAN`,
    );
  }
  return out;
}

/** SCAN/HSCAN's common options: MATCH, COUNT and (SCAN only) TYPE. */
export function scanOptions(
  args: Uint8Array[],
  how: { from: number; allowType: boolean },
): { match: Uint8Array | null; count: number; type: string | null } {
  const options = { match: null as Uint8Array | null, count: 10, type: null as string | null };
  for (let at = how.from; at < args.length; at += 2) {
    const option = upper(args[at]!);
    const value = args[at + 1];
    if (value === undefined) throw new RedisError(ERRORS.syntax);
    if (option === "MATCH") options.match = matchesAll(value) ? null : value;
    else if (option === "COUNT") {
      const count = parseInt64(value);
      if (count === null) throw new RedisError(ERRORS.notInteger);
      if (count < 1n) throw new RedisError(ERRORS.syntax);
      options.count = Number(count > BigInt(REDIS_SCAN_MAX_COUNT) ? REDIS_SCAN_MAX_COUNT : count);
    } else if (option === "TYPE" && how.allowType) options.type = text(value).toLowerCase();
    else throw new RedisError(ERRORS.syntax);
  }
  return options;
}

/** A SCAN cursor argument: 0 (start), or a cursor this gateway issued. */
export function scanCursor(ctx: CommandContext, arg: Uint8Array, key: Uint8Array | null) {
  const id = /^\d+$/.test(text(arg)) ? Number(text(arg)) : NaN;
  if (!Number.isSafeInteger(id)) throw new RedisError("ERR invalid cursor");
  if (id === 0) return null;
  const cursor = ctx.gateway.cursor(id);
  const sameKey = cursor !== undefined &&
    (cursor.key === null ? key === null : key !== null && text(cursor.key) === text(key));
  if (cursor === undefined || !sameKey) {
    throw new RedisError("ERR invalid cursor (unknown to this gateway, or expired)");
  }
  return cursor.after;
}

async function scan(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  const after = scanCursor(ctx, args[1]!, null);
  const options = scanOptions(args, { from: 2, allowType: true });
  const start = after === null ? undefined : Uint8Array.of(...after, 0);
  const found: Uint8Array[] = [];
  const last = await walkRecords(ctx, { start, limit: options.count }, (pair) => {
    const record = liveRecord(ctx, pair);
    const key = keyOfRecord(pair.key);
    if (record === null) return;
    if (options.type !== null && TYPE_NAMES[record.type] !== options.type) return;
    if (options.match !== null && !globMatch(options.match, key)) return;
    found.push(key);
  });
  const next = last === null ? 0 : ctx.gateway.saveCursor({ key: null, after: last });
  return [String(next), found];
}

async function randomkey(ctx: CommandContext): Promise<Reply> {
  const random = crypto.getRandomValues(new Uint8Array(8));
  const { start } = recordRange();
  for (const from of [Uint8Array.of(...start, ...random), start]) {
    let found: Uint8Array | null = null;
    await walkRecords(ctx, { start: from, limit: REDIS_SCAN_PAGE_KEYS }, (pair) => {
      if (liveRecord(ctx, pair) === null) return;
      found = keyOfRecord(pair.key);
      return false;
    });
    if (found !== null) return found;
  }
  return null;
}

/** The number of records, expired ones not yet reclaimed included (as Redis's DBSIZE). */
export async function dbsize(ctx: CommandContext): Promise<number> {
  let count = 0;
  await walkRecords(ctx, { keyOnly: true }, () => void count++);
  return count;
}

async function flush(ctx: CommandContext, args: Uint8Array[]): Promise<Reply> {
  for (const arg of args.slice(1)) {
    const mode = upper(arg);
    if (mode !== "ASYNC" && mode !== "SYNC") throw new RedisError(ERRORS.syntax);
  }
  if (args.length > 2) throw new RedisError(ERRORS.syntax);
  const end = prefixEnd(REDIS_PREFIX);
  let cursor: Uint8Array = REDIS_PREFIX;
  for (;;) {
    const page = await ctx.ks.txn.scan(cursor, end, { limit: REDIS_SCAN_PAGE_KEYS, keyOnly: true });
    for (const pair of page) ctx.ks.txn.delete(pair.key);
    if (page.length < REDIS_SCAN_PAGE_KEYS) break;
    cursor = Uint8Array.of(...page[page.length - 1]!.key, 0);
  }
  ctx.ks.forgetCache();
  ctx.gateway.touchAll();
  return OK;
}

const generic = (spec: Omit<CommandSpec, "kind" | "group" | "since"> & { since?: string }) =>
  ({ kind: "data", group: "generic", since: "1.0.0", ...spec }) as CommandSpec;

const expireSpec = (name: string, how: { seconds: boolean; relative: boolean }, since: string) =>
  generic({
    name,
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    since,
    summary: `Sets the expiration time of a key${how.relative ? "" : " to a Unix timestamp"}${
      how.seconds ? "" : " in milliseconds"
    }.`,
    run: (ctx, args) => expire(ctx, args, { ...how, command: name }),
  });

const ttlSpec = (name: string, how: { ms: boolean; absolute: boolean }, since: string) =>
  generic({
    name,
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    since,
    summary: how.absolute
      ? "Returns the expiration time of a key as a Unix timestamp."
      : "Returns the expiration time in seconds of a key.",
    run: (ctx, args) => ttl(ctx, args[1]!, how),
  });

/** The generic key commands. */
export const KEY_COMMANDS: CommandSpec[] = [
  generic({
    name: "del",
    arity: -2,
    flags: ["write"],
    keys: [1, -1, 1],
    summary: "Deletes one or more keys.",
    run: deleteKeys,
  }),
  generic({
    name: "unlink",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, -1, 1],
    since: "4.0.0",
    summary: "Asynchronously deletes one or more keys.",
    run: deleteKeys,
  }),
  generic({
    name: "exists",
    arity: -2,
    flags: ["readonly", "fast"],
    keys: [1, -1, 1],
    summary: "Determines whether one or more keys exist.",
    run: async (ctx, args) => {
      let count = 0;
      for (let at = 1; at < args.length; at++) {
        if ((await ctx.ks.record(args[at]!)) !== null) count++;
      }
      return count;
    },
  }),
  generic({
    name: "type",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    summary: "Determines the type of value stored at a key.",
    run: async (ctx, args) => {
      const record = await ctx.ks.record(args[1]!);
      return new SimpleString(record === null ? "none" : TYPE_NAMES[record.type]!);
    },
  }),
  expireSpec("expire", { seconds: true, relative: true }, "1.0.0"),
  expireSpec("pexpire", { seconds: false, relative: true }, "2.6.0"),
  expireSpec("expireat", { seconds: true, relative: false }, "1.2.0"),
  expireSpec("pexpireat", { seconds: false, relative: false }, "2.6.0"),
  ttlSpec("ttl", { ms: false, absolute: false }, "1.0.0"),
  ttlSpec("pttl", { ms: true, absolute: false }, "2.6.0"),
  ttlSpec("expiretime", { ms: false, absolute: true }, "7.0.0"),
  ttlSpec("pexpiretime", { ms: true, absolute: true }, "7.0.0"),
  generic({
    name: "persist",
    arity: 2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    since: "2.2.0",
    summary: "Removes the expiration time of a key.",
    run: async (ctx, args) => {
      const record = await ctx.ks.record(args[1]!);
      if (record === null || record.expireAtMs === 0) return 0;
      ctx.ks.setExpiry(args[1]!, record, 0);
      return 1;
    },
  }),
  generic({
    name: "rename",
    arity: 3,
    flags: ["write"],
    keys: [1, 2, 1],
    summary: "Renames a key and overwrites the destination.",
    run: (ctx, args) => rename(ctx, args, false),
  }),
  generic({
    name: "renamenx",
    arity: 3,
    flags: ["write", "fast"],
    keys: [1, 2, 1],
    summary: "Renames a key only when the target key name doesn't exist.",
    run: (ctx, args) => rename(ctx, args, true),
  }),
  generic({
    name: "copy",
    arity: -3,
    flags: ["write", "denyoom"],
    keys: [1, 2, 1],
    since: "6.2.0",
    summary: "Copies the value of a key to a new key.",
    run: copy,
  }),
  generic({
    name: "keys",
    arity: 2,
    flags: ["readonly"],
    keys: [0, 0, 0],
    summary: "Returns all key names that match a pattern.",
    run: keys,
  }),
  generic({
    name: "scan",
    arity: -2,
    flags: ["readonly"],
    keys: [0, 0, 0],
    since: "2.8.0",
    summary: "Iterates over the key names in the database.",
    run: scan,
  }),
  generic({
    name: "randomkey",
    arity: 1,
    flags: ["readonly"],
    keys: [0, 0, 0],
    summary: "Returns a random key name from the database.",
    run: randomkey,
  }),
  {
    name: "dbsize",
    arity: 1,
    kind: "data",
    flags: ["readonly", "fast"],
    keys: [0, 0, 0],
    group: "server",
    since: "1.0.0",
    summary: "Returns the number of keys in the database.",
    run: dbsize,
  },
  {
    name: "flushdb",
    arity: -1,
    kind: "data",
    flags: ["write"],
    keys: [0, 0, 0],
    group: "server",
    since: "1.0.0",
    summary: "Remove all keys from the current database.",
    run: flush,
  },
  {
    name: "flushall",
    arity: -1,
    kind: "data",
    flags: ["write"],
    keys: [0, 0, 0],
    group: "server",
    since: "1.0.0",
    summary: "Removes all keys from all databases.",
    run: flush,
  },
];
