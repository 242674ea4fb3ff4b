/**
 * `RawKV`: the raw (non-transactional) key-value client, with the API of TiKV's raw clients —
 * get, put (with TTL), delete, their batch forms, scan and reverse scan, delete range,
 * compare-and-swap, key TTL and checksum, and region splits — over the kvproto protocol only.
 *
 * - Routing: every key goes to the region holding it (a `RegionResolver`: a standalone store,
 *   or PD). Batch calls group their keys by region and send one request per region (split
 *   further by `RAW_BATCH_MAX_KEYS` and bytes), up to `MAX_CONCURRENT_REGION_REQUESTS` at once;
 *   scans, delete-range and checksum walk the regions of their range in order.
 * - Retries: region errors and broken connections are retried with back-off after the region
 *   cache learns from them (see `region_request.ts`), until the call's deadline (`timeoutMs`,
 *   default 20 s) or its attempt budget runs out. A batch part that hit a region error is
 *   regrouped, since its keys may now span several regions.
 * - Writes are sent at most once per attempt that may have reached a store: put, delete, their
 *   batch forms, delete-range and compare-and-swap are not repeated after a failure whose
 *   outcome is unknown (a connection broken after sending, a deadline), and the
 *   `UnavailableError` (`sent: true`) says so. Repeating one could apply it twice around another
 *   client's write of the same key (found by the chaos suite: a put re-sent after its leader's
 *   store was killed overwrote a later acknowledged put), which no linearizable register allows.
 *   Region errors say a write was not applied, and are retried. Reads are retried in every case.
 * - Errors are `ClientError`s (see `errors.ts`); a request the store refuses (e.g. a key over
 *   the size limit) rejects with `ServerError` carrying the store's message.
 * - Keys and values are bytes; a string is taken as UTF-8. Returned bytes may be views into a
 *   response buffer shared with other results of the same response.
 *
 * @example
 * ```ts
 * const client = await RawKV.connect({ host: "127.0.0.1:20160" });
 * await client.put("k", "v", { ttlSeconds: 60 });
 * const value = await client.get("k"); // Uint8Array of "v"
 * client.close();
 * ```
 */
import { compareBytes, utf8 } from "../util/bytes.ts";
import type { Backoffer } from "./backoff.ts";
import type { CommandName, ResponseOf } from "./commands.ts";
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_CONCURRENT_REGION_REQUESTS,
  RAW_BATCH_MAX_KEYS,
  RAW_BATCH_PUT_MAX_BYTES,
  RAW_SCAN_MAX_LIMIT,
} from "./constants.ts";
import { InvalidArgumentError, ServerError } from "./errors.ts";
import { keyId, minEnd, reachesEnd, uniqueKeys } from "./keys.ts";
import { PdResolver } from "./pd_resolver.ts";
import type { RegionInfo } from "./region.ts";
import { type RequestBody, RETRY } from "./region_request.ts";
import type { RegionResolver } from "./region_resolver.ts";
import { chunkByCount, chunkBySize, RegionRpc } from "./region_rpc.ts";
import { splitRegions } from "./split_regions.ts";
import { StandaloneResolver } from "./standalone_resolver.ts";
import { ConnectionPool, type TransportOptions } from "./transport.ts";

/** A key or value: bytes, or a string taken as UTF-8. */
export type Bytes = Uint8Array | string;

/** A key and its value. */
export interface KvPair {
  key: Uint8Array;
  value: Uint8Array;
}

/** Options of a `RawKV`. */
export interface RawKVOptions {
  /** Column family of calls that name none: "default" (default), "write" or "lock". */
  cf?: string;
  /** Deadline of a call, retries included (default 20 s). */
  timeoutMs?: number;
  /** Batching and streams of the store connections. */
  transport?: TransportOptions;
  /** Most pairs asked of one RawScan request (default and maximum 65 536). */
  scanPageSize?: number;
}

/** Where `RawKV.connect` finds the cluster: a standalone store, or PD endpoints. */
export type ConnectOptions = RawKVOptions & ({ host: string } | { pd: readonly string[] });

/** Options of one call. */
export interface CallOptions {
  cf?: string;
  timeoutMs?: number;
}

/** Options of a scan. */
export interface ScanOptions extends CallOptions {
  /** Most pairs returned (default 10 240, TiKV's raw scan limit). */
  limit?: number;
  /** Leave values empty. */
  keyOnly?: boolean;
}

/** The outcome of a compare-and-swap. */
export interface CasResult {
  /** Whether the swap happened. */
  succeeded: boolean;
  /** The value before the call (null when the key was absent). */
  previous: Uint8Array | null;
}

/** The checksum of a range (TiKV's Crc64_Xor: CRC-64/XZ of key then value, XOR-ed). */
export interface Checksum {
  checksum: bigint;
  totalKvs: bigint;
  totalBytes: bigint;
}

/** TiKV's raw scan limit, the default of `scan`. */
export const DEFAULT_SCAN_LIMIT = 10_240;

const EMPTY = new Uint8Array(0);

function bytesOf(value: Bytes): Uint8Array {
  return typeof value === "string" ? utf8(value) : value;
}

function nonEmptyKey(key: Bytes, what: string): Uint8Array {
  const bytes = bytesOf(key);
  if (bytes.length === 0) throw new InvalidArgumentError(`${what}: the empty key is not allowed`);
  return bytes;
}

function ttlOf(ttlSeconds: number | undefined): bigint {
  if (ttlSeconds === undefined) return 0n;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) {
    throw new InvalidArgumentError(`ttlSeconds must be a whole number >= 0, not ${ttlSeconds}`);
  }
  return BigInt(ttlSeconds);
}

/** Throws the store's refusal carried in `response`, if any. */
function throwIfRefused(cmd: CommandName, response: object): void {
  const fields = response as {
    error?: string;
    pairs?: { error?: { abort?: string } | null }[];
    kvs?: { error?: { abort?: string } | null }[];
  };
  const message = fields.error ||
    fields.pairs?.[0]?.error?.abort || fields.kvs?.[0]?.error?.abort;
  if (message) throw new ServerError(`${cmd}: ${message}`);
}

/**
 * Runs `work` over `tasks`, at most `limit` at a time; rejects at once with the first failure,
 * while the other workers go on with the remaining tasks. (`RegionRpc.forEachRegionBatch`
 * stops taking tasks after a failure and rejects once the running ones settle; RawKV's batches
 * keep their fail-fast behaviour, so they do not use it.)
 */
async function runEagerly<T>(
  tasks: readonly T[],
  limit: number,
  work: (task: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await work(tasks[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/** The raw key-value client. */
export class RawKV {
  readonly #resolver: RegionResolver;
  readonly #pool: ConnectionPool;
  readonly #rpc: RegionRpc;
  readonly #cf: string;
  readonly #timeoutMs: number;
  readonly #scanPageSize: number;

  constructor(resolver: RegionResolver, options: RawKVOptions = {}) {
    this.#resolver = resolver;
    this.#pool = new ConnectionPool(options.transport);
    this.#rpc = new RegionRpc(resolver, this.#pool);
    this.#cf = options.cf ?? "";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(this.#timeoutMs > 0)) throw new InvalidArgumentError("timeoutMs must be positive");
    this.#scanPageSize = options.scanPageSize ?? RAW_SCAN_MAX_LIMIT;
    if (
      !Number.isSafeInteger(this.#scanPageSize) || this.#scanPageSize < 1 ||
      this.#scanPageSize > RAW_SCAN_MAX_LIMIT
    ) {
      throw new InvalidArgumentError(`scanPageSize must be in [1, ${RAW_SCAN_MAX_LIMIT}]`);
    }
  }

  /** A client of the standalone store at `host`, or of the cluster behind PD `pd`. */
  static async connect(options: ConnectOptions): Promise<RawKV> {
    const resolver = "pd" in options
      ? await PdResolver.connect(options.pd, {
        timeoutMs: options.timeoutMs,
        tls: options.transport?.tls,
      })
      : new StandaloneResolver(options.host, {
        timeoutMs: options.timeoutMs,
        tls: options.transport?.tls,
      });
    return new RawKV(resolver, options);
  }

  /** The connections in use (for statistics). */
  get connections(): ConnectionPool {
    return this.#pool;
  }

  /** The value of `key`, or null when absent (or expired). */
  async get(key: Bytes, options: CallOptions = {}): Promise<Uint8Array | null> {
    const bytes = bytesOf(key);
    const response = await this.#onKey("RawGet", bytes, { key: bytes, cf: this.#cfOf(options) }, {
      options,
      idempotent: true,
    });
    return response.notFound ? null : response.value;
  }

  /** The pairs of `keys` that exist, in the order of `keys` (duplicates once). */
  async batchGet(keys: readonly Bytes[], options: CallOptions = {}): Promise<KvPair[]> {
    const unique = uniqueKeys(keys.map(bytesOf));
    const found = new Map<string, Uint8Array>();
    await this.#onKeys("RawBatchGet", unique, {
      options,
      idempotent: true,
      chunk: (part) => chunkByCount(part, RAW_BATCH_MAX_KEYS),
      body: (part) => ({ keys: part, cf: this.#cfOf(options) }),
      collect: (response) => {
        for (const pair of response.pairs.map(pairOf)) found.set(keyId(pair.key), pair.value);
      },
    });
    return unique.flatMap((key) => {
      const value = found.get(keyId(key));
      return value === undefined ? [] : [{ key, value }];
    });
  }

  /** Stores `value` at `key`; with `ttlSeconds` > 0 it expires after that many seconds. */
  async put(
    key: Bytes,
    value: Bytes,
    options: CallOptions & { ttlSeconds?: number } = {},
  ): Promise<void> {
    const bytes = nonEmptyKey(key, "put");
    const body = {
      key: bytes,
      value: bytesOf(value),
      cf: this.#cfOf(options),
      ttl: ttlOf(options.ttlSeconds),
    };
    await this.#onKey("RawPut", bytes, body, { options, idempotent: false });
  }

  /**
   * Stores every pair; each region's part is atomic, the whole is not. `ttlSeconds` applies to
   * every pair without a `ttlSeconds` of its own.
   */
  async batchPut(
    pairs: readonly { key: Bytes; value: Bytes; ttlSeconds?: number }[],
    options: CallOptions & { ttlSeconds?: number } = {},
  ): Promise<void> {
    const entries = pairs.map((pair) => ({
      key: nonEmptyKey(pair.key, "batchPut"),
      value: bytesOf(pair.value),
      ttl: ttlOf(pair.ttlSeconds ?? options.ttlSeconds),
    }));
    const withTtl = entries.some((entry) => entry.ttl > 0n);
    await this.#onKeys("RawBatchPut", entries, {
      options,
      idempotent: false,
      keyOf: (entry) => entry.key,
      chunk: chunkPairs,
      body: (part) => ({
        pairs: part.map(({ key, value }) => ({ key, value })),
        cf: this.#cfOf(options),
        ttls: withTtl ? part.map((entry) => entry.ttl) : [],
      }),
    });
  }

  /** Removes `key` (absent keys are fine). */
  async delete(key: Bytes, options: CallOptions = {}): Promise<void> {
    const bytes = bytesOf(key);
    await this.#onKey("RawDelete", bytes, { key: bytes, cf: this.#cfOf(options) }, {
      options,
      idempotent: false,
    });
  }

  /** Removes every key of `keys`. */
  async batchDelete(keys: readonly Bytes[], options: CallOptions = {}): Promise<void> {
    await this.#onKeys("RawBatchDelete", uniqueKeys(keys.map(bytesOf)), {
      options,
      idempotent: false,
      chunk: (part) => chunkByCount(part, RAW_BATCH_MAX_KEYS),
      body: (part) => ({ keys: part, cf: this.#cfOf(options) }),
    });
  }

  /**
   * Pairs with keys in [startKey, endKey), smallest first, at most `limit`. An empty or absent
   * `endKey` means "to the last key".
   */
  async scan(
    startKey: Bytes,
    endKey?: Bytes | null,
    options: ScanOptions = {},
  ): Promise<KvPair[]> {
    const end = endKey == null ? EMPTY : bytesOf(endKey);
    const range = {
      start: bytesOf(startKey),
      end,
      limit: scanLimit(options),
      pageSize: this.#scanPageSize,
      backoffer: this.#backoffer(options),
    };
    return await this.#rpc.scanForward(range, async (region, { cursor, ask, backoffer }) => {
      const response = await this.#rpc.sendToRegion("RawScan", region, {
        startKey: cursor,
        endKey: minEnd(end, region.endKey),
        limit: ask,
        keyOnly: options.keyOnly ?? false,
        cf: this.#cfOf(options),
      }, { backoffer, idempotent: true });
      if (response === RETRY) return RETRY;
      throwIfRefused("RawScan", response);
      const pairs = response.kvs.map(pairOf);
      return { pairs, count: pairs.length, lastKey: pairs[pairs.length - 1]?.key ?? cursor };
    });
  }

  /**
   * Pairs with keys in [startKey, endKey), largest first, at most `limit`. An empty or absent
   * `endKey` means "from the last key". (kvproto's RawScan with `reverse` takes the bounds the
   * other way round; this method takes the range as `scan` does, like TiKV's Rust client.)
   */
  async reverseScan(
    startKey: Bytes,
    endKey?: Bytes | null,
    options: ScanOptions = {},
  ): Promise<KvPair[]> {
    const limit = scanLimit(options);
    const start = bytesOf(startKey);
    const callBackoffer = this.#backoffer(options);
    const pairs: KvPair[] = [];
    let upper = endKey == null ? EMPTY : bytesOf(endKey);
    if (upper.length > 0 && compareBytes(start, upper) >= 0) return pairs;
    let backoffer = callBackoffer.fork(); // one per page (see `Backoffer.fork`)
    while (pairs.length < limit) {
      const region = await this.#rpc.sender.locate(
        () => this.#resolver.locateEndKey(upper, backoffer),
        backoffer,
      );
      const lower = compareBytes(region.startKey, start) > 0 ? region.startKey : start;
      const ask = Math.min(limit - pairs.length, this.#scanPageSize);
      const response = await this.#rpc.sendToRegion("RawScan", region, {
        startKey: upper,
        endKey: lower,
        limit: ask,
        keyOnly: options.keyOnly ?? false,
        cf: this.#cfOf(options),
        reverse: true,
      }, { backoffer, idempotent: true });
      if (response === RETRY) continue;
      backoffer = callBackoffer.fork();
      throwIfRefused("RawScan", response);
      for (const kv of response.kvs) pairs.push(pairOf(kv));
      if (response.kvs.length === ask) {
        upper = pairs[pairs.length - 1]!.key;
        continue;
      }
      if (compareBytes(region.startKey, start) <= 0) break;
      upper = region.startKey;
    }
    return pairs;
  }

  /** Removes every key in [startKey, endKey); an empty `endKey` means "to the last key". */
  async deleteRange(startKey: Bytes, endKey: Bytes, options: CallOptions = {}): Promise<void> {
    const start = bytesOf(startKey);
    const end = bytesOf(endKey);
    if (end.length > 0 && compareBytes(start, end) > 0) {
      throw new InvalidArgumentError("deleteRange: startKey is after endKey");
    }
    await this.#walkRange(
      "RawDeleteRange",
      { start, end, options, idempotent: false },
      (region) => ({
        startKey: compareBytes(region.startKey, start) > 0 ? region.startKey : start,
        endKey: minEnd(end, region.endKey),
        cf: this.#cfOf(options),
      }),
    );
  }

  /**
   * Sets `key` to `value` (or deletes it when `value` is null) only if its current value is
   * `previous` (or it is absent, when `previous` is null). Atomic on the store.
   */
  async compareAndSwap(
    key: Bytes,
    previous: Bytes | null,
    value: Bytes | null,
    options: CallOptions & { ttlSeconds?: number } = {},
  ): Promise<CasResult> {
    const bytes = nonEmptyKey(key, "compareAndSwap");
    const body = {
      key: bytes,
      value: value === null ? EMPTY : bytesOf(value),
      delete: value === null,
      previousNotExist: previous === null,
      previousValue: previous === null ? EMPTY : bytesOf(previous),
      cf: this.#cfOf(options),
      ttl: ttlOf(options.ttlSeconds),
    };
    const response = await this.#onKey("RawCompareAndSwap", bytes, body, {
      options,
      idempotent: false,
    });
    return {
      succeeded: response.succeed,
      previous: response.previousNotExist ? null : response.previousValue,
    };
  }

  /** Seconds `key` has left to live (0 when it has no TTL), or null when it is absent. */
  async getKeyTTL(key: Bytes, options: CallOptions = {}): Promise<number | null> {
    const bytes = bytesOf(key);
    const response = await this.#onKey("RawGetKeyTTL", bytes, {
      key: bytes,
      cf: this.#cfOf(options),
    }, { options, idempotent: true });
    return response.notFound ? null : Number(response.ttl);
  }

  /** The checksum of the live pairs in [startKey, endKey) of the default column family. */
  async checksum(
    startKey: Bytes = EMPTY,
    endKey: Bytes = EMPTY,
    options: Omit<CallOptions, "cf"> = {},
  ): Promise<Checksum> {
    const start = bytesOf(startKey);
    const end = bytesOf(endKey);
    const total: Checksum = { checksum: 0n, totalKvs: 0n, totalBytes: 0n };
    await this.#walkRange("RawChecksum", { start, end, options, idempotent: true }, (region) => ({
      ranges: [{
        startKey: compareBytes(region.startKey, start) > 0 ? region.startKey : start,
        endKey: minEnd(end, region.endKey),
      }],
    }), (response) => {
      total.checksum ^= response.checksum;
      total.totalKvs += response.totalKvs;
      total.totalBytes += response.totalBytes;
    });
    return total;
  }

  /**
   * Splits the regions holding `keys` at them (SplitRegion with `is_raw_kv`), each region's
   * keys in one request to its leader; keys that already start a region are left out. Resolves
   * with the regions the splits made, in key order (see `split_regions.ts`).
   */
  async splitRegions(keys: readonly Bytes[], options: CallOptions = {}): Promise<RegionInfo[]> {
    return await splitRegions(this.#rpc, keys.map(bytesOf), {
      isRawKv: true,
      backoffer: this.#backoffer(options),
    });
  }

  /** Closes every connection; pending calls reject with `ClientClosedError`. */
  close(): void {
    this.#pool.close();
    this.#resolver.close();
  }

  #cfOf(options: CallOptions): string {
    const cf = options.cf ?? this.#cf;
    return cf === "default" ? "" : cf;
  }

  #backoffer(options: { timeoutMs?: number }): Backoffer {
    return this.#rpc.backoffer(options.timeoutMs ?? this.#timeoutMs);
  }

  /** Sends a single-key command to the region of `key`, retrying until it is answered. */
  async #onKey<C extends CommandName>(
    cmd: C,
    key: Uint8Array,
    body: RequestBody<C>,
    how: { options: CallOptions; idempotent: boolean },
  ): Promise<ResponseOf<C>> {
    const response = await this.#rpc.sendToKey(cmd, key, () => body, {
      backoffer: this.#backoffer(how.options),
      idempotent: how.idempotent,
    });
    throwIfRefused(cmd, response);
    return response;
  }

  /**
   * Sends a batch command: `items` grouped by region, each group split by `chunk`, one request
   * per chunk; a chunk that must be retried is regrouped.
   */
  async #onKeys<C extends CommandName, T = Uint8Array>(
    cmd: C,
    items: readonly T[],
    how: {
      options: CallOptions;
      keyOf?: (item: T) => Uint8Array;
      chunk: (items: T[]) => T[][];
      body: (items: T[]) => RequestBody<C>;
      collect?: (response: ResponseOf<C>) => void;
      /** A read (repeated after an unknown outcome); a write is not (module header). */
      idempotent: boolean;
    },
  ): Promise<void> {
    const keyOf = how.keyOf ?? ((item: T) => item as unknown as Uint8Array);
    // Each chunk is a request with its own attempt budget; its regrouped parts carry it on.
    const sendGroups = async (pending: readonly T[], parent: Backoffer): Promise<void> => {
      const groups = await this.#rpc.groupByRegion(pending, keyOf, parent);
      const tasks = groups.flatMap(({ region, items }) =>
        how.chunk(items).map((part) => ({ region, part }))
      );
      await runEagerly(tasks, MAX_CONCURRENT_REGION_REQUESTS, async ({ region, part }) => {
        const backoffer = parent.fork();
        const response = await this.#rpc.sendToRegion(cmd, region, how.body(part), {
          backoffer,
          idempotent: how.idempotent,
        });
        if (response === RETRY) return sendGroups(part, backoffer);
        throwIfRefused(cmd, response);
        how.collect?.(response);
      });
    };
    if (items.length > 0) await sendGroups(items, this.#backoffer(how.options));
  }

  /** Sends `cmd` to each region piece of [start, end), in key order. */
  async #walkRange<C extends CommandName>(
    cmd: C,
    range: { start: Uint8Array; end: Uint8Array; options: CallOptions; idempotent: boolean },
    body: (region: RegionInfo) => RequestBody<C>,
    collect?: (response: ResponseOf<C>) => void,
  ): Promise<void> {
    const callBackoffer = this.#backoffer(range.options);
    let backoffer = callBackoffer.fork(); // one per region (see `Backoffer.fork`)
    let cursor = range.start;
    for (;;) {
      const region = await this.#rpc.locate(cursor, backoffer);
      const response = await this.#rpc.sendToRegion(cmd, region, body(region), {
        backoffer,
        idempotent: range.idempotent,
      });
      if (response === RETRY) continue;
      backoffer = callBackoffer.fork();
      throwIfRefused(cmd, response);
      collect?.(response);
      if (reachesEnd(region, range.end)) return;
      cursor = region.endKey;
    }
  }
}

/** A decoded `KvPair` (absent fields are empty). */
function pairOf(kv: { key?: Uint8Array | null; value?: Uint8Array | null }): KvPair {
  return { key: kv.key ?? EMPTY, value: kv.value ?? EMPTY };
}

function scanLimit(options: ScanOptions): number {
  const limit = options.limit ?? DEFAULT_SCAN_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new InvalidArgumentError(`limit must be a whole number >= 0, not ${limit}`);
  }
  return limit;
}

/** Pairs in chunks of at most RAW_BATCH_MAX_KEYS pairs and RAW_BATCH_PUT_MAX_BYTES bytes. */
function chunkPairs<T extends KvPair>(items: T[]): T[][] {
  return chunkBySize(items, {
    maxItems: RAW_BATCH_MAX_KEYS,
    maxBytes: RAW_BATCH_PUT_MAX_BYTES,
    sizeOf: (pair) => pair.key.length + pair.value.length,
  });
}
