/**
 * `scanPage` over an in-memory reader: its bounds (limit, examined pairs, answer bytes, the
 * reverse walk's refusal) and cursors, without a store.
 */
import assert from "node:assert/strict";
import {
  KV_MAX_VALUE_BYTES,
  KV_REVERSE_SCAN_MAX_EXAMINED,
  KV_SCAN_MAX_ANSWER_BYTES,
  KV_SCAN_MAX_EXAMINED,
  KV_SCAN_MAX_LIMIT,
} from "../../src/constants.ts";
import { keyId } from "../../src/client/keys.ts";
import { BasaltError } from "../../src/embedded/errors.ts";
import { encodeValue, storageKey } from "../../src/embedded/layout.ts";
import { prefixEnd, scanPage, type StoredReader } from "../../src/embedded/scan.ts";
import { compareBytes } from "../../src/util/bytes.ts";

const NOW_MS = 1_000_000;
const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A sorted in-memory reader of stored pairs, counting the pairs it returned. */
function memoryReader(pairs: { key: string; value: Uint8Array; expireAtMs?: number }[]) {
  const stored = pairs.map((pair) => ({
    key: storageKey(utf8(pair.key)),
    value: encodeValue(pair.value, pair.expireAtMs ?? 0),
  })).sort((a, b) => compareBytes(a.key, b.key));
  const reader: StoredReader & { returned: number } = {
    returned: 0,
    scan(start, end, limit) {
      const page = stored.filter((pair) =>
        compareBytes(pair.key, start) >= 0 && compareBytes(pair.key, end) < 0
      ).slice(0, limit);
      reader.returned += page.length;
      return Promise.resolve(page);
    },
    batchGet(keys) {
      const wanted = new Set(keys.map(keyId));
      return Promise.resolve(
        new Map(stored.filter((p) => wanted.has(keyId(p.key))).map((p) => [keyId(p.key), p.value])),
      );
    },
  };
  return reader;
}

const keys = (count: number, expireAtMs = 0) =>
  Array.from({ length: count }, (_, i) => ({
    key: `k${String(i).padStart(6, "0")}`,
    value: utf8("v"),
    expireAtMs,
  }));

Deno.test("prefixEnd: the first key after the prefix; none for all-0xff", () => {
  assert.deepEqual(prefixEnd(utf8("ab")), utf8("ac"));
  assert.deepEqual(prefixEnd(Uint8Array.of(0x61, 0xff)), utf8("b"));
  assert.equal(prefixEnd(Uint8Array.of(0xff, 0xff)), null);
});

Deno.test("a forward page holds at most limit pairs and its cursor is the next key", async () => {
  const page = await scanPage(memoryReader(keys(10)), { limit: 4, nowMs: NOW_MS });
  assert.deepEqual(page.entries.map((e) => text(e.key)), [
    "k000000",
    "k000001",
    "k000002",
    "k000003",
  ]);
  assert.equal(text(page.cursor!), "k000004");
  const last = await scanPage(memoryReader(keys(10)), {
    limit: 4,
    cursor: utf8("k000008"),
    nowMs: NOW_MS,
  });
  assert.equal(last.entries.length, 2);
  assert.equal(last.cursor, null, "no cursor at the end of the range");
});

Deno.test(`a limit above KV_SCAN_MAX_LIMIT (${KV_SCAN_MAX_LIMIT}) is refused`, async () => {
  await assert.rejects(
    scanPage(memoryReader([]), { limit: KV_SCAN_MAX_LIMIT + 1, nowMs: NOW_MS }),
    (error: unknown) => error instanceof BasaltError && error.code === "InvalidArgument",
  );
  const full = await scanPage(memoryReader(keys(KV_SCAN_MAX_LIMIT + 5)), {
    limit: KV_SCAN_MAX_LIMIT,
    nowMs: NOW_MS,
  });
  assert.equal(full.entries.length, KV_SCAN_MAX_LIMIT);
});

Deno.test(`a forward page examines at most KV_SCAN_MAX_EXAMINED (${KV_SCAN_MAX_EXAMINED}) expired pairs`, async () => {
  const reader = memoryReader([...keys(KV_SCAN_MAX_EXAMINED + 100, NOW_MS - 1)]);
  const page = await scanPage(reader, { nowMs: NOW_MS });
  assert.deepEqual(page.entries, []);
  assert.ok(page.cursor !== null, "it ends early with a cursor");
  assert.ok(reader.returned <= KV_SCAN_MAX_EXAMINED + 256, `read ${reader.returned}`);
  const rest = await scanPage(reader, { cursor: page.cursor, nowMs: NOW_MS });
  assert.equal(rest.cursor, null);
});

Deno.test("a page ends before KV_SCAN_MAX_ANSWER_BYTES of values, holding at least one", async () => {
  const big = new Uint8Array(KV_MAX_VALUE_BYTES);
  const fit = KV_SCAN_MAX_ANSWER_BYTES / KV_MAX_VALUE_BYTES;
  const pairs = ["a", "b", "c", "d", "e", "f"].map((key) => ({ key, value: big }));
  assert.ok(fit >= 1 && fit < pairs.length);
  const page = await scanPage(memoryReader(pairs), { nowMs: NOW_MS });
  assert.equal(page.entries.length, fit);
  assert.equal(text(page.cursor!), pairs[fit]!.key);
  const reversed = await scanPage(memoryReader(pairs), { reverse: true, nowMs: NOW_MS });
  assert.equal(reversed.entries.length, fit);
  assert.equal(text(reversed.entries[0]!.key), "f");
  assert.equal(text(reversed.cursor!), text(reversed.entries[fit - 1]!.key));
});

Deno.test("a reverse page is the largest live keys, expired ones skipped, cursor below", async () => {
  const pairs = [...keys(6), { key: "k000005x", value: utf8("dead"), expireAtMs: NOW_MS }];
  const page = await scanPage(memoryReader(pairs), { reverse: true, limit: 2, nowMs: NOW_MS });
  assert.deepEqual(page.entries.map((e) => text(e.key)), ["k000005", "k000004"]);
  assert.equal(text(page.cursor!), "k000004");
});

Deno.test(`a reverse scan over more than KV_REVERSE_SCAN_MAX_EXAMINED pairs is refused (RangeTooLarge)`, async () => {
  const reader = memoryReader(keys(KV_REVERSE_SCAN_MAX_EXAMINED + 1));
  await assert.rejects(
    scanPage(reader, { reverse: true, limit: 1, nowMs: NOW_MS }),
    (error: unknown) => error instanceof BasaltError && error.code === "RangeTooLarge",
  );
  const narrowed = await scanPage(reader, {
    reverse: true,
    limit: 1,
    start: utf8("k050000"),
    nowMs: NOW_MS,
  });
  assert.equal(text(narrowed.entries[0]!.key), `k${KV_REVERSE_SCAN_MAX_EXAMINED}`);
});
