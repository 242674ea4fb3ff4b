import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { withSeed } from "../codec/test_support.ts";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { newRollback } from "../txn_types/write.ts";
import { PointGetter } from "./point_getter.ts";
import { scan, type ScanEntry, type ScannerOptions } from "./scanner.ts";
import { key, MvccFixture } from "./test_support.ts";

/** Entries as short strings: `k=v`, or `k!locked@ts`, or `k!<kind>`. */
function show(entries: ScanEntry[]): string[] {
  return entries.map((entry) => {
    const name = fromUtf8(entry.key);
    if (entry.error === undefined) return `${name}=${fromUtf8(entry.value)}`;
    if (entry.error.kind === "KeyIsLocked") {
      return `${name}!locked@${entry.error.lockInfo.lockVersion}`;
    }
    return `${name}!${entry.error.kind}`;
  });
}

function scanOf(
  fx: MvccFixture,
  options: Partial<ScannerOptions> & { readTs: bigint },
  limit = 100,
) {
  using snapshot = fx.snapshot();
  return show(scan(snapshot, { lowerBound: null, upperBound: null, ...options, limit }));
}

function sample(): MvccFixture {
  const fx = new MvccFixture();
  fx.commitPut("a", "a1", { startTs: 1n, commitTs: 2n });
  fx.commitPut("a", "a2", { startTs: 8n, commitTs: 9n });
  fx.commitPut("b", "b1", { startTs: 1n, commitTs: 2n });
  fx.commitDelete("b", { startTs: 4n, commitTs: 5n });
  fx.putLock("c", { lockType: "Put", startTs: 6n, shortValue: utf8("c1") }); // lock only
  fx.commitPut("d", "d".repeat(300), { startTs: 1n, commitTs: 3n }); // long value
  fx.putWrite("d", 7n, { writeType: "Lock", startTs: 6n });
  fx.putWrite("d", 8n, newRollback(8n, true));
  fx.commitPut("e", "e1", { startTs: 1n, commitTs: 2n });
  fx.putLock("e", { lockType: "Pessimistic", startTs: 6n, forUpdateTs: 6n });
  fx.commitPut("e\0", "e0", { startTs: 1n, commitTs: 2n }); // "e" is a prefix of it
  return fx;
}

Deno.test("Scanner forward: visible versions in key order, locks reported in place", () => {
  const fx = sample();
  const d = "d=" + "d".repeat(300);
  assertEquals(scanOf(fx, { readTs: 10n }), ["a=a2", "c!locked@6", d, "e=e1", "e\0=e0"]);
  assertEquals(scanOf(fx, { readTs: 4n }), ["a=a1", "b=b1", d, "e=e1", "e\0=e0"]);
  assertEquals(scanOf(fx, { readTs: 10n, bypassLocks: new Set([6n]) })[1], d);
  assertEquals(scanOf(fx, { readTs: 10n, accessLocks: new Set([6n]) })[1], "c=c1");
  assertEquals(scanOf(fx, { readTs: 10n, isolationLevel: "RC" })[1], d);
});

Deno.test("Scanner backward: the same entries in reverse", () => {
  const fx = sample();
  const forward = scanOf(fx, { readTs: 10n });
  assertEquals(scanOf(fx, { readTs: 10n, desc: true }), forward.slice().reverse());
  assertEquals(scanOf(fx, { readTs: 4n, desc: true }), scanOf(fx, { readTs: 4n }).reverse());
});

Deno.test("Scanner respects bounds, limit and keyOnly", () => {
  const fx = sample();
  assertEquals(scanOf(fx, { readTs: 10n, lowerBound: key("b"), upperBound: key("e") }), [
    "c!locked@6",
    "d=" + "d".repeat(300),
  ]);
  assertEquals(scanOf(fx, { readTs: 10n, lowerBound: key("e\0") }), ["e\0=e0"]);
  assertEquals(scanOf(fx, { readTs: 10n, upperBound: key("e\0"), desc: true }, 2), [
    "e=e1",
    "d=" + "d".repeat(300),
  ]);
  assertEquals(scanOf(fx, { readTs: 10n, keyOnly: true }, 2), ["a=", "c!locked@6"]);
  using snapshot = fx.snapshot();
  throws(
    () => scan(snapshot, { readTs: 1n, lowerBound: key("b"), upperBound: key("a"), limit: 1 }),
    RangeError,
  );
});

Deno.test("Scanner agrees with PointGetter on random histories (a dumb model check)", () => {
  withSeed((prng) => {
    for (let round = 0; round < 100; round++) {
      const fx = new MvccFixture();
      const names = ["", "a", "a\0", "ab", "b", "b\xff", "c"].slice(0, 2 + prng.below(6));
      for (const name of names) {
        let ts = 1n;
        for (let v = prng.below(5); v > 0; v--) {
          const startTs = ts + BigInt(prng.below(3));
          const commitTs = startTs + BigInt(1 + prng.below(3));
          ts = commitTs + 1n;
          const kind = prng.below(5);
          if (kind === 0) fx.commitDelete(name, { startTs, commitTs });
          else if (kind === 1) fx.putWrite(name, commitTs, { writeType: "Lock", startTs });
          else if (kind === 2) fx.putWrite(name, startTs, newRollback(startTs, false));
          else {fx.commitPut(name, `${name}@${commitTs}`.repeat(prng.below(2) ? 1 : 40), {
              startTs,
              commitTs,
            });}
        }
        if (prng.below(3) === 0) {
          fx.putLock(name, {
            lockType: prng.below(2) ? "Put" : "Lock",
            startTs: ts,
            shortValue: utf8("L"),
          });
        }
      }
      const readTs = BigInt(prng.below(16));
      using snapshot = fx.snapshot();
      using getter = new PointGetter(snapshot, { readTs });
      const expected: string[] = [];
      for (const name of names.slice().sort()) {
        const result = getter.get(key(name));
        if (!result.ok) {
          expected.push(
            `${name}!locked@${
              result.error.kind === "KeyIsLocked" && result.error.lockInfo.lockVersion
            }`,
          );
        } else if (result.value !== null) expected.push(`${name}=${fromUtf8(result.value)}`);
      }
      const options = { readTs, lowerBound: null, upperBound: null, limit: 100 };
      assertEquals(show(scan(snapshot, options)), expected, `round ${round} readTs ${readTs}`);
      assertEquals(show(scan(snapshot, { ...options, desc: true })), expected.slice().reverse());
    }
  });
});
