import { strict as nodeAssert } from "node:assert";
import { assert, AssertionError, describeFields, isAssertionError, unreachable } from "./assert.ts";

Deno.test("assert() returns on a true condition and throws AssertionError with its fields on a false one", () => {
  assert(1 + 1 === 2, "arithmetic holds");
  try {
    assert(false, "commit ts below start ts", { startTs: 5n, commitTs: 4n });
    nodeAssert.fail("assert(false) returned");
  } catch (caught) {
    nodeAssert.ok(isAssertionError(caught));
    nodeAssert.equal(
      caught.message,
      "assertion failed: commit ts below start ts {startTs=5n commitTs=4n}",
    );
    nodeAssert.deepEqual(caught.fields, { startTs: 5n, commitTs: 4n });
    nodeAssert.equal(caught.name, "AssertionError");
  }
});

Deno.test("unreachable() throws AssertionError naming the impossible value", () => {
  const kind = "merge" as unknown as never;
  nodeAssert.throws(
    () => unreachable(kind, "unknown write kind"),
    /unknown write kind \{value="merge"\}/,
  );
});

Deno.test("fields render bytes as hex and cut long values, and never throw", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const text = describeFields({
    key: new Uint8Array([0x01, 0xab]),
    long: "x".repeat(1000),
    cyclic,
    nothing: undefined,
  });
  nodeAssert.match(text, /^\{key=0x01ab long="x+…/);
  nodeAssert.ok(text.length < 700, `${text.length} chars`);
  nodeAssert.match(text, /cyclic=\[object Object\] nothing=undefined\}$/);
});

Deno.test("AssertionError is not any of the expected failure classes: it is a plain Error subclass", () => {
  const error = new AssertionError("x");
  nodeAssert.ok(error instanceof Error);
  nodeAssert.ok(!(error instanceof RangeError));
  nodeAssert.ok(!isAssertionError(new Error("x")));
});
