/**
 * The command-by-command suite of the Redis gateway: each step is a command and the reply
 * Redis 7 gives, errors included (as `{ error: text }`). The same table runs against the
 * gateway (standalone and cluster) and against a real `redis-server` 7, which is how the
 * expectations themselves were checked.
 */
import assert from "node:assert/strict";

/** A reply as node-redis (RESP2) hands it out, or an error's text. */
export type Expected =
  | string
  | number
  | null
  | Expected[]
  | { error: string }
  | { match: RegExp }
  | { between: [number, number] }
  | { wholeScan: string[] };

/** One step: the command and its expected reply. */
export type Step = [string[], Expected];

/** Sends one command; resolves with its reply or `{ error }`. */
export type Send = (args: string[]) => Promise<unknown>;

const WRONGTYPE = { error: "WRONGTYPE Operation against a key holding the wrong kind of value" };
const NOT_INT = { error: "ERR value is not an integer or out of range" };
const SYNTAX = { error: "ERR syntax error" };

/** Strings: every command, its options and its errors. */
export const STRING_STEPS: Step[] = [
  [["SET", "s", "hello"], "OK"],
  [["GET", "s"], "hello"],
  [["GET", "missing"], null],
  [["SET", "s", "x", "NX"], null],
  [["SET", "n", "x", "XX"], null],
  [["SET", "s", "world", "XX", "GET"], "hello"],
  [["SET", "s2", "v", "NX", "GET"], null],
  [["SET", "s", "v", "NX", "XX"], SYNTAX],
  [["SET", "s", "v", "EX", "0"], { error: "ERR invalid expire time in 'set' command" }],
  [["SET", "s", "v", "EX", "x"], NOT_INT],
  [["SET", "s", "v", "EX", "10", "PX", "100"], SYNTAX],
  [["SET", "s", "v", "KEEPTTL", "EX", "10"], SYNTAX],
  [["SET", "t", "v", "EX", "100"], "OK"],
  [["TTL", "t"], { between: [99, 100] }],
  [["SET", "t", "w", "KEEPTTL"], "OK"],
  [["TTL", "t"], { between: [99, 100] }],
  [["SET", "t", "w"], "OK"],
  [["TTL", "t"], -1],
  [["SET", "t", "w", "PXAT", "99999999999999"], "OK"],
  [["PEXPIRETIME", "t"], 99999999999999],
  [["SETNX", "s", "z"], 0],
  [["SETNX", "nx", "z"], 1],
  [["SETEX", "ex", "100", "v"], "OK"],
  [["SETEX", "ex", "-1", "v"], { error: "ERR invalid expire time in 'setex' command" }],
  [["PSETEX", "pex", "100000", "v"], "OK"],
  [["PTTL", "pex"], { between: [99000, 100000] }],
  [["GETSET", "ex", "new"], "v"],
  [["TTL", "ex"], -1],
  [["GETDEL", "ex"], "new"],
  [["GETDEL", "ex"], null],
  [["GETEX", "s", "EX", "50"], "world"],
  [["TTL", "s"], { between: [49, 50] }],
  [["GETEX", "s", "PERSIST"], "world"],
  [["TTL", "s"], -1],
  [["GETEX", "s", "PERSIST", "EX", "1"], SYNTAX],
  [["MSET", "a", "1", "b", "2"], "OK"],
  [["MSET", "a", "1", "b"], { error: "ERR wrong number of arguments for 'mset' command" }],
  [["MGET", "a", "b", "missing"], ["1", "2", null]],
  [["MSETNX", "a", "9", "c", "3"], 0],
  [["MSETNX", "c", "3", "d", "4"], 1],
  [["APPEND", "ap", "abc"], 3],
  [["APPEND", "ap", "def"], 6],
  [["STRLEN", "ap"], 6],
  [["STRLEN", "missing"], 0],
  [["GETRANGE", "ap", "0", "2"], "abc"],
  [["GETRANGE", "ap", "-3", "-1"], "def"],
  [["GETRANGE", "ap", "5", "2"], ""],
  [["GETRANGE", "ap", "-1", "-5"], ""],
  [["GETRANGE", "ap", "0", "100"], "abcdef"],
  [["SETRANGE", "ap", "3", "XY"], 6],
  [["GET", "ap"], "abcXYf"],
  [["SETRANGE", "sr", "2", "Z"], 3],
  [["GET", "sr"], "\x00\x00Z"],
  [["SETRANGE", "sr", "-1", "Z"], { error: "ERR offset is out of range" }],
  [["SETRANGE", "empty", "5", ""], 0],
  [["EXISTS", "empty"], 0],
  [["INCR", "i"], 1],
  [["INCRBY", "i", "10"], 11],
  [["DECR", "i"], 10],
  [["DECRBY", "i", "20"], -10],
  [["INCR", "s"], NOT_INT],
  [["INCRBY", "i", "1.5"], NOT_INT],
  [["SET", "big", "9223372036854775807"], "OK"],
  [["INCR", "big"], { error: "ERR increment or decrement would overflow" }],
  [["DECRBY", "i", "-9223372036854775808"], { error: "ERR decrement would overflow" }],
  [["SET", "lead", "01"], "OK"],
  [["INCR", "lead"], NOT_INT],
  [["INCRBYFLOAT", "f", "0.1"], "0.1"],
  [["INCRBYFLOAT", "f", "0.2"], "0.3"],
  [["INCRBYFLOAT", "g", "5.0e3"], "5000"],
  [["INCRBYFLOAT", "f", "-0.3"], "0"],
  [["INCRBYFLOAT", "s", "1"], { error: "ERR value is not a valid float" }],
  [["INCRBYFLOAT", "f", "abc"], { error: "ERR value is not a valid float" }],
  [["HSET", "h", "f", "v"], 1],
  [["GET", "h"], WRONGTYPE],
  [["APPEND", "h", "x"], WRONGTYPE],
  [["INCR", "h"], WRONGTYPE],
  [["SET", "h", "v", "GET"], WRONGTYPE],
  [["MGET", "h", "a"], [null, "1"]],
  [["SET", "h", "now-a-string"], "OK"],
  [["TYPE", "h"], "string"],
];

/** Keys: deletion, expiry (NX/XX/GT/LT), TTLs, renames, scans. */
export const KEY_STEPS: Step[] = [
  [["MSET", "k1", "a", "k2", "b", "k3", "c"], "OK"],
  [["DEL", "k1", "k2", "nokey"], 2],
  [["UNLINK", "k3", "k3"], 1],
  [["SET", "k", "v"], "OK"],
  [["EXISTS", "k", "k", "nokey"], 2],
  [["TYPE", "k"], "string"],
  [["TYPE", "nokey"], "none"],
  [["TTL", "k"], -1],
  [["TTL", "nokey"], -2],
  [["EXPIRETIME", "k"], -1],
  [["EXPIRE", "nokey", "10"], 0],
  [["EXPIRE", "k", "100", "XX"], 0],
  [["EXPIRE", "k", "100", "NX"], 1],
  [["EXPIRE", "k", "200", "NX"], 0],
  [["EXPIRE", "k", "50", "GT"], 0],
  [["EXPIRE", "k", "300", "GT"], 1],
  [["EXPIRE", "k", "400", "LT"], 0],
  [["EXPIRE", "k", "200", "LT"], 1],
  [["TTL", "k"], { between: [199, 200] }],
  [["EXPIRE", "k", "10", "NX", "XX"], {
    error: "ERR NX and XX, GT or LT options at the same time are not compatible",
  }],
  [["EXPIRE", "k", "10", "GT", "LT"], {
    error: "ERR GT and LT options at the same time are not compatible",
  }],
  [["EXPIRE", "k", "10", "FOO"], { error: "ERR Unsupported option FOO" }],
  [["EXPIRE", "k", "x"], NOT_INT],
  [["EXPIRE", "k", "9223372036854775807"], {
    error: "ERR invalid expire time in 'expire' command",
  }],
  [["PEXPIRE", "k", "100000"], 1],
  [["PTTL", "k"], { between: [99000, 100000] }],
  [["EXPIREAT", "k", "4102444800"], 1],
  [["EXPIRETIME", "k"], 4102444800],
  [["PEXPIREAT", "k", "4102444800123"], 1],
  [["PEXPIRETIME", "k"], 4102444800123],
  [["PERSIST", "k"], 1],
  [["PERSIST", "k"], 0],
  [["SET", "p", "v"], "OK"],
  [["EXPIRE", "p", "10", "LT"], 1],
  [["SET", "q", "v"], "OK"],
  [["EXPIRE", "q", "10", "GT"], 0],
  [["EXPIRE", "q", "-1"], 1],
  [["EXISTS", "q"], 0],
  [["RENAME", "nokey", "x"], { error: "ERR no such key" }],
  [["SET", "r", "1", "EX", "100"], "OK"],
  [["RENAME", "r", "r2"], "OK"],
  [["GET", "r2"], "1"],
  [["TTL", "r2"], { between: [99, 100] }],
  [["EXISTS", "r"], 0],
  [["RENAME", "r2", "r2"], "OK"],
  [["SET", "r3", "3"], "OK"],
  [["RENAMENX", "r2", "r3"], 0],
  [["RENAMENX", "r2", "r4"], 1],
  [["COPY", "r4", "r5"], 1],
  [["COPY", "r4", "r5"], 0],
  [["COPY", "r4", "r5", "REPLACE"], 1],
  [["COPY", "r4", "r4"], { error: "ERR source and destination objects are the same" }],
  [["COPY", "nokey", "r6"], 0],
  [["HSET", "hc", "a", "1", "b", "2"], 2],
  [["RENAME", "hc", "hd"], "OK"],
  [["HGETALL", "hd"], ["a", "1", "b", "2"]],
  [["COPY", "hd", "he"], 1],
  [["HGETALL", "he"], ["a", "1", "b", "2"]],
  [["FLUSHDB"], "OK"],
  [["DBSIZE"], 0],
  [["RANDOMKEY"], null],
  [["MSET", "user:1", "a", "user:2", "b", "other", "c"], "OK"],
  [["HSET", "user:h", "f", "v"], 1],
  [["DBSIZE"], 4],
  [["KEYS", "user:*"], { match: /^(user:1|user:2|user:h)(,(user:1|user:2|user:h)){2}$/ }],
  [["KEYS", "user:[0-9]"], { match: /^user:[12],user:[12]$/ }],
  [["RANDOMKEY"], { match: /^(user:1|user:2|user:h|other)$/ }],
  [["SCAN", "0", "COUNT", "100", "MATCH", "user:*", "TYPE", "hash"], ["0", ["user:h"]]],
  [["SCAN", "0", "COUNT", "0"], SYNTAX],
  [["SCAN", "x"], { error: "ERR invalid cursor" }],
  [["SELECT", "0"], "OK"],
  [["FLUSHALL"], "OK"],
  [["DBSIZE"], 0],
];

/** Hashes. */
export const HASH_STEPS: Step[] = [
  [["HSET", "h", "a", "1", "b", "2"], 2],
  [["HSET", "h", "a", "10", "c", "3"], 1],
  [["HSET", "h", "a"], { error: "ERR wrong number of arguments for 'hset' command" }],
  [["HGET", "h", "a"], "10"],
  [["HGET", "h", "zz"], null],
  [["HGET", "nokey", "a"], null],
  [["HMGET", "h", "a", "zz", "b"], ["10", null, "2"]],
  [["HEXISTS", "h", "b"], 1],
  [["HEXISTS", "h", "zz"], 0],
  [["HLEN", "h"], 3],
  [["HLEN", "nokey"], 0],
  [["HKEYS", "h"], ["a", "b", "c"]],
  [["HVALS", "h"], ["10", "2", "3"]],
  [["HGETALL", "h"], ["a", "10", "b", "2", "c", "3"]],
  [["HGETALL", "nokey"], []],
  [["HINCRBY", "h", "a", "5"], 15],
  [["HINCRBY", "h", "new", "-2"], -2],
  [["HINCRBY", "h", "a", "x"], NOT_INT],
  [["HSET", "h", "s", "abc"], 1],
  [["HINCRBY", "h", "s", "1"], { error: "ERR hash value is not an integer" }],
  [["HSET", "h", "max", "9223372036854775807"], 1],
  [["HINCRBY", "h", "max", "1"], { error: "ERR increment or decrement would overflow" }],
  [["HDEL", "h", "a", "zz", "new"], 2],
  [["HSCAN", "h", "0"], {
    wholeScan: ["b", "2", "c", "3", "max", "9223372036854775807", "s", "abc"],
  }],
  [["HSCAN", "h", "0", "MATCH", "m*"], ["0", ["max", "9223372036854775807"]]],
  [["HDEL", "h", "b", "c", "s", "max"], 4],
  [["EXISTS", "h"], 0],
  [["SET", "str", "v"], "OK"],
  [["HSET", "str", "a", "1"], WRONGTYPE],
  [["HGET", "str", "a"], WRONGTYPE],
  [["HGETALL", "str"], WRONGTYPE],
  [["HSET", "hx", "a", "1"], 1],
  [["EXPIRE", "hx", "100"], 1],
  [["HSET", "hx", "b", "2"], 1],
  [["TTL", "hx"], { between: [99, 100] }],
  [["SET", "hx", "string-now"], "OK"],
  [["HGETALL", "hx"], WRONGTYPE],
  [["DEL", "hx"], 1],
  [["HSET", "hx", "z", "1"], 1],
  [["HGETALL", "hx"], ["z", "1"]],
];

/** Server and connection commands, and errors of the command table. */
export const SERVER_STEPS: Step[] = [
  [["PING"], "PONG"],
  [["PING", "hi"], "hi"],
  [["ECHO", "e"], "e"],
  [["FOO", "a", "b"], { error: "ERR unknown command 'FOO', with args beginning with: 'a' 'b' " }],
  [["GET"], { error: "ERR wrong number of arguments for 'get' command" }],
  [["CLIENT", "SETNAME", "my-client"], "OK"],
  [["CLIENT", "GETNAME"], "my-client"],
  [["CLIENT", "SETNAME", "has space"], {
    error: "ERR Client names cannot contain spaces, newlines or special characters.",
  }],
  [["CLIENT", "ID"], { match: /^\d+$/ }],
  [["CONFIG", "GET", "databases"], { match: /^databases,\d+$/ }],
  [["TIME"], { match: /^\d{10},\d{1,6}$/ }],
  [["COMMAND", "INFO", "get"], { match: /^get,2,/ }],
  [["INFO", "keyspace"], { match: /^# Keyspace/ }],
];

/** Checks `actual` against `expected`; `what` names the step. */
export function check(actual: unknown, expected: Expected, what: string): void {
  if (expected !== null && typeof expected === "object" && !Array.isArray(expected)) {
    if ("error" in expected) {
      assert.deepStrictEqual(actual, expected, what);
    } else if ("match" in expected) {
      const text = Array.isArray(actual) ? actual.flat(3).join(",") : String(actual);
      assert.match(text, expected.match, what);
    } else if ("wholeScan" in expected) {
      // One reply with cursor 0 and every pair, in any order (Redis: insertion order; Basalt: field order).
      const pairs = (reply: string[]) =>
        reply.flatMap((field, i) => i % 2 === 0 ? [`${field}=${reply[i + 1]}`] : []).sort();
      const [cursor, items] = actual as [string, string[]];
      assert.equal(cursor, "0", what);
      assert.deepStrictEqual(pairs(items), pairs(expected.wholeScan), what);
    } else {
      const [low, high] = expected.between;
      assert.ok(
        typeof actual === "number" && actual >= low && actual <= high,
        `${what}: ${actual}`,
      );
    }
    return;
  }
  assert.deepStrictEqual(actual, expected, what);
}

/** Runs `steps` in order through `send`. */
export async function runSteps(send: Send, steps: Step[]): Promise<void> {
  for (const [args, expected] of steps) {
    check(await send(args), expected, args.join(" "));
  }
}

/** Every step table, by name. */
export const SUITES: Record<string, Step[]> = {
  strings: STRING_STEPS,
  keys: KEY_STEPS,
  hashes: HASH_STEPS,
  server: SERVER_STEPS,
};
