/**
 * POST /v1/txn: compare conditions, reads, puts and deletes committed as one transaction.
 *
 * ```json
 * {"compare": [{"key": "a", "value": "1"}, {"key": "b", "exists": false}],
 *  "reads":   [{"key": "a"}],
 *  "puts":    [{"key": "c", "value": "3", "ttl_seconds": 60}],
 *  "deletes": [{"key": "d"}]}
 * ```
 *
 * Every key and value may be given as `…_base64` instead. Order of work: the compares are
 * checked at the transaction's snapshot, in order — the first that does not hold refuses the
 * whole request with 409 `compare_failed` (its index, key and the value found), nothing
 * written; then the reads; then the writes. With writes, every compared and read key is locked
 * too (`BasaltTransaction.lock`), so the commit fails if another transaction wrote one of them
 * meanwhile: then everything runs again at a new snapshot, compares included (at most
 * KV_TXN_MAX_ATTEMPTS runs, then 409 `write_conflict`). So a committed answer's compares and
 * reads held when it committed. Without writes nothing is committed: the reads are one
 * consistent snapshot.
 *
 * Answer (200): `{"committed": <whether it wrote>, "reads": [{"key", "found", "value",
 * "ttl_seconds"}…]}` in the order of `reads`. At most HTTP_TXN_MAX_OPS operations in all; a key
 * may be written once per request.
 */
import { HTTP_TXN_MAX_OPS } from "../../constants.ts";
import type { Basalt } from "../../embedded/basalt.ts";
import { BasaltError } from "../../embedded/errors.ts";
import type { Entry } from "../../embedded/scan.ts";
import type { BasaltTransaction } from "../../embedded/transaction.ts";
import { keyId } from "../../client/keys.ts";
import { bytesEqual } from "../../util/bytes.ts";
import { type BodyLimits, readJson } from "./body.ts";
import { asObject, bytesField, readBytesField, readTtl, requireBytesField } from "./codec.ts";
import { HttpError, jsonResponse } from "./errors.ts";
import { entryJson } from "./kv_routes.ts";

interface Compare {
  key: Uint8Array;
  /** The value the key must hold, or null when only existence is compared. */
  value: Uint8Array | null;
  exists: boolean;
}

interface TxnRequest {
  compares: Compare[];
  reads: Uint8Array[];
  puts: { key: Uint8Array; value: Uint8Array; ttlSeconds?: number }[];
  deletes: Uint8Array[];
}

const FIELDS = new Set(["compare", "reads", "puts", "deletes"]);

function list(body: Record<string, unknown>, name: string): Record<string, unknown>[] {
  const value = body[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new HttpError(400, "invalid_argument", `${name} must be a list`);
  return value.map((item, i) => asObject(item, `${name}[${i}]`));
}

function parseCompare(item: Record<string, unknown>, where: string): Compare {
  const key = requireBytesField(item, "key", where);
  const value = readBytesField(item, "value", where);
  const exists = item.exists;
  if (exists !== undefined && typeof exists !== "boolean") {
    throw new HttpError(400, "invalid_argument", `${where}: exists must be true or false`);
  }
  if (value === null && exists === undefined) {
    throw new HttpError(
      400,
      "invalid_argument",
      `${where}: give value (or value_base64) or exists`,
    );
  }
  if (value !== null && exists === false) {
    throw new HttpError(
      400,
      "invalid_argument",
      `${where}: a value cannot be compared with exists: false`,
    );
  }
  return { key, value, exists: exists ?? true };
}

/** The request of `body`, checked (400 for anything malformed). */
export function parseTxnRequest(raw: unknown): TxnRequest {
  const body = asObject(raw, "body");
  for (const name of Object.keys(body)) {
    if (!FIELDS.has(name)) {
      throw new HttpError(400, "invalid_argument", `unknown field "${name}"`, { field: name });
    }
  }
  const lists = ["compare", "reads", "puts", "deletes"].map((name) => list(body, name));
  const count = lists.reduce((sum, items) => sum + items.length, 0);
  if (count > HTTP_TXN_MAX_OPS) {
    throw new HttpError(
      400,
      "too_many_operations",
      `${count} operations in one transaction, over the limit of ${HTTP_TXN_MAX_OPS}`,
      { count, maxOperations: HTTP_TXN_MAX_OPS },
    );
  }
  const [compare, reads, puts, deletes] = lists as [
    typeof lists[0],
    typeof lists[0],
    typeof lists[0],
    typeof lists[0],
  ];
  const request: TxnRequest = {
    compares: compare.map((item, i) => parseCompare(item, `compare[${i}]`)),
    reads: reads.map((item, i) => requireBytesField(item, "key", `reads[${i}]`)),
    puts: puts.map((item, i) => ({
      key: requireBytesField(item, "key", `puts[${i}]`),
      value: requireBytesField(item, "value", `puts[${i}]`),
      ttlSeconds: readTtl(item.ttl_seconds, `puts[${i}]`),
    })),
    deletes: deletes.map((item, i) => requireBytesField(item, "key", `deletes[${i}]`)),
  };
  const written = new Set<string>();
  for (const key of [...request.puts.map((put) => put.key), ...request.deletes]) {
    const id = keyId(key);
    if (written.has(id)) {
      throw new HttpError(400, "invalid_argument", "a key is written twice in one transaction", {
        ...bytesField("key", key),
      });
    }
    written.add(id);
  }
  return request;
}

function holds(compare: Compare, entry: Entry | null): boolean {
  if (!compare.exists) return entry === null;
  if (entry === null) return false;
  return compare.value === null || bytesEqual(compare.value, entry.value);
}

/** One run of `request` in `txn`; the entries read, in order. */
async function run(txn: BasaltTransaction, request: TxnRequest): Promise<(Entry | null)[]> {
  for (const [index, compare] of request.compares.entries()) {
    const entry = await txn.getEntry(compare.key);
    if (!holds(compare, entry)) {
      throw new BasaltError("CompareFailed", `compare ${index} does not hold`, {
        index,
        ...bytesField("key", compare.key),
        found: entry !== null,
        ...(entry === null ? {} : bytesField("value", entry.value)),
      });
    }
  }
  const reads = await Promise.all(request.reads.map((key) => txn.getEntry(key)));
  const writes = request.puts.length + request.deletes.length;
  if (writes > 0) {
    const written = new Set([...request.puts.map((put) => put.key), ...request.deletes].map(keyId));
    const guarded = new Map<string, Uint8Array>();
    for (const key of [...request.compares.map((compare) => compare.key), ...request.reads]) {
      if (!written.has(keyId(key))) guarded.set(keyId(key), key);
    }
    if (guarded.size > 0) await txn.lock(...guarded.values());
  }
  for (const put of request.puts) txn.put(put.key, put.value, { ttlSeconds: put.ttlSeconds });
  for (const key of request.deletes) txn.delete(key);
  return reads;
}

/** POST /v1/txn. */
export async function postTxn(db: Basalt, request: Request, limits: BodyLimits) {
  const txnRequest = parseTxnRequest(await readJson(request, limits));
  const reads = await db.transaction((txn) => run(txn, txnRequest));
  const nowMs = Date.now();
  return jsonResponse(200, {
    committed: txnRequest.puts.length + txnRequest.deletes.length > 0,
    reads: reads.map((entry, i) =>
      entry === null
        ? { ...bytesField("key", txnRequest.reads[i]!), found: false }
        : { ...entryJson(entry, nowMs), found: true }
    ),
  });
}
