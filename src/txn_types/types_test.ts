import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { hex } from "../codec/test_support.ts";
import { utf8 } from "../util/bytes.ts";
import { displayRawKey, Key } from "./key.ts";
import { mutationFromProto, newMutation } from "./mutation.ts";
import { composeTs, logicalOf, nextTs, physicalMs, prevTs, TS_MAX } from "./timestamp.ts";
import { AssertionError } from "../util/assert.ts";

Deno.test("timestamps are physical << 18 | logical", () => {
  const ts = composeTs(1000n, 5n);
  assertEquals(ts, 1000n * 262144n + 5n);
  assertEquals(physicalMs(ts), 1000n);
  assertEquals(logicalOf(ts), 5n);
  assertEquals(nextTs(ts), ts + 1n);
  assertEquals(prevTs(ts), ts - 1n);
  throws(() => nextTs(TS_MAX), AssertionError);
  throws(() => prevTs(0n), AssertionError);
  throws(() => composeTs(1n, 1n << 18n), AssertionError);
  throws(() => composeTs(1n << 46n, 0n), AssertionError);
});

Deno.test("Key encodes raw keys memcomparably and appends descending timestamps", () => {
  const key = Key.fromRaw(utf8("z"));
  assertEquals(hex(key.encoded), "7a00000000000000f8");
  assertEquals(hex(key.appendTs(1000n)), "7a00000000000000f8fffffffffffffc17");
  assertEquals(Key.fromEncoded(key.encoded).toRaw(), utf8("z"));
  assert(key.equals(Key.fromRaw(utf8("z"))));
  assert(key.compare(Key.fromRaw(utf8("za"))) < 0);
  assertEquals(key.toString(), '"z"');
  assertEquals(displayRawKey(Uint8Array.of(0, 255)), "0x00ff");
});

Deno.test("mutations from kvproto keep op, value and assertion", () => {
  const put = mutationFromProto({
    op: kvrpcpb.Op.Insert,
    key: utf8("k"),
    value: utf8("v"),
    assertion: kvrpcpb.Assertion.NotExist,
  });
  assert(typeof put !== "string");
  assertEquals(put.type, "Insert");
  assertEquals(put.assertion, "NotExist");
  assertEquals(put.value, utf8("v"));
  const del = mutationFromProto({ op: kvrpcpb.Op.Del, key: utf8("k") });
  assert(typeof del !== "string");
  assertEquals(del.value, null);
  assertEquals(typeof mutationFromProto({ op: kvrpcpb.Op.Rollback, key: utf8("k") }), "string");
  throws(() => newMutation("Put", Key.fromRaw(utf8("k"))), AssertionError);
  throws(() => newMutation("Delete", Key.fromRaw(utf8("k")), { value: utf8("v") }), AssertionError);
});
