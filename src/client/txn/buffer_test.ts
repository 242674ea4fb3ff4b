import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { KeyAlreadyExistsError } from "./errors.ts";
import { keyId, MemBuffer, type MutationOp } from "./buffer.ts";

const ops = (buffer: MemBuffer) =>
  buffer.mutations().map((m) =>
    `${fromUtf8(m.key)}:${m.op}${m.value.length ? "=" + fromUtf8(m.value) : ""}`
  );

Deno.test("MemBuffer: mutations combine per key as the module table says", () => {
  type Step = "set" | "delete" | "insert" | "lock";
  const cases: [Step[], MutationOp | "throws"][] = [
    [["set"], "Put"],
    [["delete"], "Del"],
    [["insert"], "Insert"],
    [["lock"], "Lock"],
    [["lock", "set"], "Put"],
    [["set", "lock"], "Put"],
    [["set", "insert"], "throws"],
    [["delete", "insert"], "Put"],
    [["insert", "set"], "Insert"],
    [["insert", "delete"], "CheckNotExists"],
    [["insert", "delete", "insert"], "Insert"],
    [["insert", "delete", "set"], "Insert"],
    [["insert", "insert"], "throws"],
    [["set", "delete"], "Del"],
    [["delete", "set"], "Put"],
  ];
  for (const [steps, expected] of cases) {
    const buffer = new MemBuffer();
    const key = utf8("k");
    const run = () => {
      for (const step of steps) {
        if (step === "set") buffer.set(key, utf8("v"));
        else if (step === "delete") buffer.delete(key);
        else if (step === "insert") buffer.insert(key, utf8("v"));
        else buffer.lock(key);
      }
    };
    if (expected === "throws") {
      assert.throws(run, KeyAlreadyExistsError, steps.join(","));
      continue;
    }
    run();
    assert.equal(buffer.get(key)?.op, expected, steps.join(" then "));
  }
});

Deno.test("MemBuffer: key order, ranges, sizes, and copies of the caller's bytes", () => {
  const buffer = new MemBuffer();
  const reused = utf8("b");
  buffer.set(reused, utf8("2"));
  reused[0] = "z".charCodeAt(0); // the caller reuses its array
  buffer.set(utf8("a"), utf8("1"));
  buffer.delete(utf8("c"));
  buffer.set(new Uint8Array([0xff]), utf8("hi"));
  buffer.set(utf8("a"), utf8("11"));
  assert.deepEqual(ops(buffer).slice(0, 3), ["a:Put=11", "b:Put=2", "c:Del"]);
  assert.equal(buffer.mutations()[3]!.key[0], 0xff, "bytes sort unsigned");
  assert.deepEqual(buffer.range(utf8("b"), utf8("c")).map((m) => fromUtf8(m.key)), ["b"]);
  assert.deepEqual(buffer.range(utf8("b"), new Uint8Array(0)).length, 3);
  assert.equal(buffer.size, 4);
  assert.equal(buffer.bytes, (1 + 2) + (1 + 1) + 1 + (1 + 2));
  assert.equal(keyId(new Uint8Array(10_000).fill(7)).length, 10_000, "long keys have ids");
});
