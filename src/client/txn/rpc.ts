/**
 * How the transactional client reaches regions: `RegionRpc` (one request to the region of a
 * key, batches of keys grouped by region and regrouped after a region error) over the
 * transactional key space — keys located and grouped by their memcomparable encoding, as
 * region bounds are data keys (`region_keys.ts`) — with the transactional batch shape, and
 * the context extras a read carries (`CONTEXT_EXTRAS`).
 */
import type { kvrpcpb } from "../../../proto/mod.ts";
import type { Backoffer } from "../backoff.ts";
import type { CommandName, RequestOf, ResponseOf } from "../commands.ts";
import type { RegionInfo } from "../region.ts";
import { RETRY } from "../region_request.ts";
import type { RegionResolver } from "../region_resolver.ts";
import { TXN_KEY_SPACE } from "./region_keys.ts";
import type { Clock } from "../clock.ts";
import { chunkByCount, chunkBySize, RegionRpc } from "../region_rpc.ts";
import {
  ConnectionPool,
  type SendOptions,
  type StoreLink,
  type TransportOptions,
} from "../transport.ts";
import { TXN_BATCH_MAX_KEYS, TXN_MAX_CONCURRENT_BATCHES } from "./constants.ts";

export { chunkByCount, chunkBySize, RETRY };

/**
 * Fields a request adds to its region's `Context`: the locks a read may ignore
 * (`resolved_locks`) or read through (`committed_locks`), and `is_retry_request` on a request
 * sent again (a re-sent prewrite: the store then re-checks keys it would otherwise skip, so a
 * retry that meets its own commit cannot write a second version). The region request sender
 * builds the Context from the region alone, so they travel beside the body under this symbol
 * (object spread copies symbol keys; protobuf encoding ignores them) and `TxnConnectionPool`
 * merges them in just before sending.
 */
export const CONTEXT_EXTRAS = Symbol("basalt.contextExtras");

/** What `CONTEXT_EXTRAS` may carry. */
export type ContextExtras = Pick<
  kvrpcpb.Context.$Properties,
  "resolvedLocks" | "committedLocks" | "isRetryRequest"
>;

/** `body` with context extras attached (see `CONTEXT_EXTRAS`). */
export function withContextExtras<T extends object>(body: T, extras: ContextExtras): T {
  return Object.assign(body, { [CONTEXT_EXTRAS]: extras });
}

/** A connection pool whose connections merge `CONTEXT_EXTRAS` into the request's Context. */
export class TxnConnectionPool extends ConnectionPool {
  readonly #views = new WeakMap<StoreLink, StoreLink>();

  constructor(options: TransportOptions = {}) {
    super(options);
  }

  override get(address: string): StoreLink {
    const connection = super.get(address);
    let view = this.#views.get(connection);
    if (view === undefined) {
      view = contextMergingView(connection);
      this.#views.set(connection, view);
    }
    return view;
  }
}

/** A view of `connection` whose `send` merges context extras (other members pass through). */
function contextMergingView(connection: StoreLink): StoreLink {
  const send = <C extends CommandName>(
    cmd: C,
    request: RequestOf<C>,
    options?: SendOptions,
  ): Promise<ResponseOf<C>> => {
    const extras = (request as { [CONTEXT_EXTRAS]?: ContextExtras })[CONTEXT_EXTRAS];
    if (extras === undefined) return connection.send(cmd, request, options);
    const withContext = request as { context?: kvrpcpb.Context.$Properties | null };
    const merged = { ...request, context: { ...withContext.context, ...extras } };
    return connection.send(cmd, merged as RequestOf<C>, options);
  };
  return new Proxy(connection, {
    get(target, property) {
      if (property === "send") return send;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * Region-aware request helpers of one `TxnKV` (see `RegionRpc`), with the batch shape most
 * transactional commands share.
 */
export class TxnRpc extends RegionRpc {
  /** Helpers over `resolver`'s regions that route keys by their encoding (`TXN_KEY_SPACE`). */
  constructor(resolver: RegionResolver, pool: ConnectionPool, options: { clock?: Clock } = {}) {
    super(resolver, pool, TXN_KEY_SPACE, options);
  }

  /**
   * Runs `send` for every batch of at most `TXN_BATCH_MAX_KEYS` keys of one region,
   * `TXN_MAX_CONCURRENT_BATCHES` at once, each with its own backoffer; a batch for which
   * `send` returns RETRY is regrouped (see `forEachRegionBatch`).
   */
  forEachKeyBatch(
    keys: readonly Uint8Array[],
    how: {
      backoffer: Backoffer;
      send: (
        region: RegionInfo,
        keys: Uint8Array[],
        backoffer: Backoffer,
      ) => Promise<void | typeof RETRY>;
    },
  ): Promise<void> {
    return this.forEachRegionBatch(keys, {
      keyOf: (key) => key,
      chunk: (part) => chunkByCount(part, TXN_BATCH_MAX_KEYS),
      backoffer: how.backoffer,
      concurrency: TXN_MAX_CONCURRENT_BATCHES,
      send: how.send,
    });
  }
}
