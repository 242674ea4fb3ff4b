/**
 * Every list a served request carries has a stated maximum, enforced on arrival: the table in
 * `request_limits.ts` is checked against the request types themselves (their repeated fields,
 * found on the generated classes), and each bound is exercised through `runCommand` with a
 * request one entry (or byte) past it.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import {
  RAW_BATCH_MAX_KEYS,
  RAW_MAX_RANGES,
  REQUEST_MAX_BYTES,
  REQUEST_MAX_ITEMS,
} from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { ASYNC_COMMIT_MAX_SECONDARIES } from "../mvcc/mod.ts";
import { COMMANDS } from "./commands.ts";
import { Latches } from "./raw/latches.ts";
import { standaloneRegion } from "./region.ts";
import {
  CONTEXT_LISTS,
  type ListLimit,
  NONZERO_TIMESTAMPS,
  REQUEST_LISTS,
  TRANSACTION_TIMESTAMPS,
} from "./request_limits.ts";
import { runCommand } from "./respond.ts";
import type { StoreServices } from "./services.ts";
import { newTxnStore } from "./txn/store.ts";

const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

function newServices(): StoreServices {
  const engine = new MemoryEngine();
  const region = standaloneRegion();
  return {
    regions: new Map([[region.id, region]]),
    raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => 1_000 },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
  };
}

/** The repeated fields of a generated message class (protobufjs puts `emptyArray` on them). */
function repeatedFields(codec: unknown): string[] {
  const prototype = (codec as { prototype: Record<string, unknown> }).prototype;
  return Object.getOwnPropertyNames(prototype).filter((name) => Array.isArray(prototype[name]));
}

Deno.test("every repeated field of every served request, and of Context, has a stated maximum", () => {
  for (const command of COMMANDS) {
    const bounded = (REQUEST_LISTS[command.name] ?? []).map((limit) => limit.field).sort();
    assert.deepEqual(bounded, repeatedFields(command.requestCodec).sort(), command.name);
  }
  const context = CONTEXT_LISTS.map((limit) => limit.field).sort();
  assert.deepEqual(context, repeatedFields(kvrpcpb.Context).sort(), "Context");
  const served = new Set(COMMANDS.map((command) => command.name));
  for (const name of Object.keys(REQUEST_LISTS)) assert.ok(served.has(name), `${name} is served`);
});

Deno.test("the bounds are the stated constants", () => {
  const used = new Set(
    [...Object.values(REQUEST_LISTS).flat(), ...CONTEXT_LISTS].map((limit) => limit.maxItems),
  );
  for (const constant of [RAW_BATCH_MAX_KEYS, RAW_MAX_RANGES, REQUEST_MAX_ITEMS]) {
    assert.ok(used.has(constant), `${constant} bounds a list`);
  }
  assert.ok(used.has(ASYNC_COMMIT_MAX_SECONDARIES));
  assert.equal(REQUEST_LISTS.RawBatchScan![0]!.maxItems, RAW_MAX_RANGES);
  assert.equal(REQUEST_LISTS.RawChecksum![0]!.maxItems, RAW_MAX_RANGES);
  assert.equal(REQUEST_LISTS.RawBatchPut![0]!.maxItems, RAW_BATCH_MAX_KEYS);
});

// deno-lint-ignore no-explicit-any
type Answer = any;

/** The refusal text of an answer, whichever error field its command uses. */
function refusalOf(answer: Answer): string {
  if (typeof answer.error === "string" && answer.error !== "") return answer.error;
  if (answer.error?.abort) return answer.error.abort;
  const list = answer.errors ?? answer.kvs ?? answer.pairs ?? [];
  return list[0]?.abort ?? list[0]?.error?.abort ?? "";
}

/** One entry of a list of `limit`'s field, small (a 1-byte key, an empty value). */
function entryOf(field: string): unknown {
  switch (field) {
    case "keys":
    case "secondaries":
      return new Uint8Array(1);
    case "pairs":
    case "mutations":
      return { key: new Uint8Array(1) };
    case "ranges":
      return { startKey: new Uint8Array(1) };
    case "txnInfos":
      return { txn: 1n };
    case "forUpdateTsConstraints":
      return { index: 0 };
    default:
      return 0; // numbers: ttls, pessimisticActions, txnFileChunks, lock ts lists
  }
}

async function refusal(name: string, request: Record<string, unknown>): Promise<string> {
  const command = COMMANDS.find((c) => c.name === name)!;
  // Built as decoded messages, not encoded: a list past 64K entries is cheap this way.
  const decoded = command.requestCodec.decode(
    command.requestCodec.encode({ context: CONTEXT }).finish(),
  ) as Record<string, unknown>;
  Object.assign(decoded, request);
  return refusalOf(await runCommand(newServices(), command, decoded));
}

Deno.test("a list one entry past its maximum is refused on arrival, naming the list", async () => {
  const cases: [string, ListLimit, "request" | "context"][] = [
    ...Object.entries(REQUEST_LISTS).flatMap(([name, limits]) =>
      limits.map((limit) => [name, limit, "request"] as [string, ListLimit, "request"])
    ),
    ...CONTEXT_LISTS.map((limit) => ["KvGet", limit, "context"] as [string, ListLimit, "context"]),
  ];
  for (const [name, limit, where] of cases) {
    const list = new Array(limit.maxItems + 1).fill(entryOf(limit.field));
    const request = where === "request"
      ? { [limit.field]: list }
      : { context: { ...CONTEXT, [limit.field]: list } };
    const message = await refusal(name, request);
    assert.equal(
      message,
      `${name}: ${limit.maxItems + 1} ${limit.field} exceed the limit of ${limit.maxItems}`,
      `${name}.${limit.field}`,
    );
  }
});

Deno.test("keys and values past REQUEST_MAX_BYTES together are refused; at the bound they run", async () => {
  const valueBytes = 4 * 1024 * 1024;
  const count = REQUEST_MAX_BYTES / valueBytes; // 8 pairs of exactly 4 MiB (1-byte keys less)
  const pairs = Array.from({ length: count }, (_, i) => ({
    key: new Uint8Array([i]),
    value: new Uint8Array(valueBytes - 1),
  }));
  assert.equal(await refusal("RawBatchPut", { pairs }), "");
  pairs.push({ key: new Uint8Array([count]), value: new Uint8Array(1) });
  assert.equal(
    await refusal("RawBatchPut", { pairs }),
    `RawBatchPut: ${
      REQUEST_MAX_BYTES + 2
    } bytes of keys and values exceed the limit of ${REQUEST_MAX_BYTES}`,
  );
  const mutations = pairs.map((pair) => ({ op: kvrpcpb.Op.Put, ...pair }));
  assert.match(
    await refusal("KvPrewrite", { mutations, primaryLock: new Uint8Array([0]), startVersion: 5n }),
    /^KvPrewrite: \d+ bytes of keys and values exceed the limit/,
  );
});

Deno.test("a write naming u64::MAX as a transaction or commit ts is refused on arrival (found by the fuzzer)", async () => {
  const maxTs = (1n << 64n) - 1n;
  for (const [name, fields] of Object.entries(TRANSACTION_TIMESTAMPS)) {
    const command = COMMANDS.find((c) => c.name === name);
    assert.ok(command !== undefined, `${name} is a served command`);
    const fresh = command.requestCodec.decode(new Uint8Array(0)) as Record<string, unknown>;
    for (const field of fields) {
      assert.equal(typeof fresh[field], "bigint", `${name}.${field} is a u64 field`);
      assert.equal(
        await refusal(name, { [field]: maxTs }),
        `${name}: ${field} u64::MAX is not a transaction timestamp`,
      );
    }
  }
});

Deno.test("a prewrite, pessimistic lock or commit at ts 0 is refused on arrival (found by the fuzzer)", async () => {
  for (const [name, fields] of Object.entries(NONZERO_TIMESTAMPS)) {
    for (const field of fields) {
      // Every other timestamp field set, so only `field` is 0.
      const others = Object.fromEntries(
        [...(TRANSACTION_TIMESTAMPS[name] ?? []), ...fields].map((f) => [f, 5n]),
      );
      assert.equal(
        await refusal(name, { ...others, [field]: 0n }),
        `${name}: ${field} must not be 0`,
      );
    }
  }
});
