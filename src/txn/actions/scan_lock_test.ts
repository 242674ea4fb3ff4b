import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { fromUtf8 } from "../../util/bytes.ts";
import { newLock } from "../../txn_types/lock.ts";
import { scanLock, type ScanLockArgs } from "./scan_lock.ts";
import { key, MvccFixture } from "./test_support.ts";

const memory = (rawKey: string, startTs: bigint) => ({
  key: key(rawKey),
  lock: newLock({
    lockType: "Put",
    primary: new TextEncoder().encode(rawKey),
    startTs,
    useAsyncCommit: true,
  }),
});

function scan(fx: MvccFixture, args: Partial<ScanLockArgs>): string[] {
  const result = fx.read((reader) =>
    scanLock(reader, { startKey: null, endKey: null, maxVersion: 100n, limit: 0, ...args })
  );
  return [
    ...result.locks.map((info) => `${fromUtf8(info.key!)}@${info.lockVersion}`),
    `remain=${result.hasRemain}`,
  ];
}

Deno.test("scanLock() merges in-memory async-commit locks with the snapshot's, in key order", () => {
  const fx = new MvccFixture();
  fx.putLock("b", { lockType: "Put", startTs: 10n });
  fx.putLock("d", { lockType: "Put", startTs: 20n });
  const memoryLocks = [memory("c", 30n), memory("a", 40n), memory("d", 20n), memory("z", 200n)];
  // "d" is in both places and reported once; "z" is above max_version.
  assertEquals(scan(fx, { memoryLocks }), ["a@40", "b@10", "c@30", "d@20", "remain=false"]);
  // The range applies to memory locks too.
  assertEquals(scan(fx, { memoryLocks, startKey: key("b"), endKey: key("d") }), [
    "b@10",
    "c@30",
    "remain=false",
  ]);
});

Deno.test("scanLock() with a limit never skips snapshot locks behind memory locks", () => {
  const fx = new MvccFixture();
  fx.putLock("a", { lockType: "Put", startTs: 10n });
  fx.putLock("c", { lockType: "Put", startTs: 10n });
  fx.putLock("e", { lockType: "Put", startTs: 10n });
  const memoryLocks = [memory("b", 30n), memory("d", 30n)];
  // The snapshot page is a, c (limit 2); b fits before c, d is past the page and waits.
  assertEquals(scan(fx, { memoryLocks, limit: 2 }), ["a@10", "b@30", "remain=true"]);
  // The next page starts after b.
  assertEquals(scan(fx, { memoryLocks, limit: 2, startKey: key("b\0") }), [
    "c@10",
    "d@30",
    "remain=true",
  ]);
  assertEquals(scan(fx, { memoryLocks, startKey: key("d") }), ["d@30", "e@10", "remain=false"]);
});
