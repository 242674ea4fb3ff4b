/**
 * Canary keys: raw and transactional keys written before a fuzz run and read back after it. A
 * canary lost or changed means some malformed request wrote where it had no business to.
 *
 * Every canary key starts with `CANARY_PREFIX`, eight bytes, so the key's memcomparable encoding
 * (the transactional records in the lock, write and default column families) starts with the
 * same eight bytes: one byte range, `[CANARY_PREFIX, successor)`, holds every record of every
 * canary in every column family. The fuzzer never sends a request that, decoded as the store
 * decodes it, names a key in that range or a range that meets it (`reachesCanaries`): such a
 * request may legitimately change a canary (a mutated RawDeleteRange whose end key grew), and
 * its effect would not be a bug.
 */
import { RawKV } from "../../src/client/raw.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { compareBytes } from "../../src/util/bytes.ts";

/** Eight bytes: exactly one memcomparable group, so encoded canary keys keep the prefix. */
export const CANARY_PREFIX = new TextEncoder().encode("~canary~");
/** The first key after every key with `CANARY_PREFIX`. */
const CANARY_END = (() => {
  const end = new Uint8Array(CANARY_PREFIX);
  end[end.length - 1]!++;
  return end;
})();
const RAW_CANARIES = 16;
const TXN_CANARIES = 16;
/** Values above 255 bytes live in the default column family, shorter ones in the write record. */
const LONG_VALUE_BYTES = 1024;

const encoder = new TextEncoder();

function canaryKey(space: "raw" | "txn", index: number): Uint8Array {
  const key = new Uint8Array(CANARY_PREFIX.length + 8);
  key.set(CANARY_PREFIX);
  key.set(encoder.encode(`${space}/${String(index).padStart(4, "0")}`), CANARY_PREFIX.length);
  return key;
}

function canaryValue(space: "raw" | "txn", index: number): Uint8Array {
  const text = `${space} canary ${index} `;
  return encoder.encode(index % 4 === 0 ? text.repeat(LONG_VALUE_BYTES / text.length) : text);
}

/** Writes every canary (raw, then in one transaction). */
export async function writeCanaries(grpcAddr: string): Promise<void> {
  const raw = await RawKV.connect({ host: grpcAddr });
  try {
    await raw.batchPut(
      Array.from({ length: RAW_CANARIES }, (_, i) => ({
        key: canaryKey("raw", i),
        value: canaryValue("raw", i),
      })),
    );
  } finally {
    raw.close();
  }
  const txnClient = await TxnKV.connect({ host: grpcAddr });
  try {
    const txn = await txnClient.begin();
    for (let i = 0; i < TXN_CANARIES; i++) txn.set(canaryKey("txn", i), canaryValue("txn", i));
    await txn.commit();
  } finally {
    await txnClient.close();
  }
}

/** Reads every canary back; returns what is missing or changed (empty when all are intact). */
export async function checkCanaries(grpcAddr: string): Promise<string[]> {
  const problems: string[] = [];
  const check = (space: "raw" | "txn", index: number, value: Uint8Array | undefined) => {
    const expected = canaryValue(space, index);
    if (value === undefined) problems.push(`${space} canary ${index} is missing`);
    else if (compareBytes(value, expected) !== 0) problems.push(`${space} canary ${index} changed`);
  };
  const raw = await RawKV.connect({ host: grpcAddr });
  try {
    const keys = Array.from({ length: RAW_CANARIES }, (_, i) => canaryKey("raw", i));
    const pairs = await raw.batchGet(keys);
    const found = new Map(pairs.map((pair) => [new TextDecoder().decode(pair.key), pair.value]));
    keys.forEach((key, i) => check("raw", i, found.get(new TextDecoder().decode(key))));
  } finally {
    raw.close();
  }
  const txnClient = await TxnKV.connect({ host: grpcAddr });
  try {
    const txn = await txnClient.begin();
    for (let i = 0; i < TXN_CANARIES; i++) {
      check("txn", i, (await txn.get(canaryKey("txn", i))) ?? undefined);
    }
    await txn.rollback();
  } finally {
    await txnClient.close();
  }
  return problems;
}

function reachesKey(key: Uint8Array): boolean {
  return compareBytes(key, CANARY_PREFIX) >= 0 && compareBytes(key, CANARY_END) < 0;
}

/** Whether [start, end) (empty end = unbounded, either order) meets the canaries' range. */
function reachesRange(start: Uint8Array, end: Uint8Array): boolean {
  let low = start;
  let high = end;
  if (high.length > 0 && compareBytes(low, high) > 0) [low, high] = [high, low];
  return compareBytes(low, CANARY_END) < 0 &&
    (high.length === 0 || compareBytes(high, CANARY_PREFIX) > 0);
}

/**
 * Whether a decoded request (any message, walked whole) names a canary key, or, with
 * `ranges` (a command that deletes a range), names a key range that meets the canaries: an
 * object with `startKey`/`endKey`. Ranges of reads cannot lose a canary and are let through.
 */
export function reachesCanaries(message: unknown, ranges: boolean, depth = 0): boolean {
  if (depth > 16 || message === null || typeof message !== "object") return false;
  if (message instanceof Uint8Array) return reachesKey(message);
  if (Array.isArray(message)) {
    return message.some((item) => reachesCanaries(item, ranges, depth + 1));
  }
  const fields = message as Record<string, unknown>;
  const { startKey, endKey } = fields;
  if (ranges && (startKey instanceof Uint8Array || endKey instanceof Uint8Array)) {
    const empty = new Uint8Array(0);
    const start = startKey instanceof Uint8Array ? startKey : empty;
    if (reachesRange(start, endKey instanceof Uint8Array ? endKey : empty)) return true;
  }
  return Object.values(fields).some((value) => reachesCanaries(value, ranges, depth + 1));
}
