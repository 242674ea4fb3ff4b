import assert from "node:assert/strict";
import { utf8 } from "../../util/bytes.ts";
import { keyHash } from "./key_hash.ts";

Deno.test("keyHash is FNV-1a 64 (published test vectors)", () => {
  assert.equal(keyHash(new Uint8Array()), 0xcbf29ce484222325n);
  assert.equal(keyHash(utf8("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(keyHash(utf8("foobar")), 0x85944171f73967e8n);
  assert.notEqual(keyHash(utf8("k1")), keyHash(utf8("k2")));
});
