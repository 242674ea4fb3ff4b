/**
 * How the transactional client reaches regions: one request to the region of a key, and
 * batches of keys grouped by region, over the shared `RegionRequestSender` (region errors,
 * leader moves, broken streams and their back-off are handled there).
 *
 * A batch whose region answered with a region error is regrouped before it is sent again,
 * since its keys may now span several regions — the caller's `send` sees only groups of keys
 * that one region held when they were grouped. Every loop ends at the call's deadline (the
 * `Backoffer`'s) or its attempt budget.
 */
import type { kvrpcpb } from "../../../proto/mod.ts";
import { Backoffer } from "../backoff.ts";
import type { CommandName, RequestOf, ResponseOf } from "../commands.ts";
import type { RegionInfo } from "../region.ts";
import { RegionRequestSender, type RequestBody, RETRY } from "../region_request.ts";
import type { RegionResolver } from "../region_resolver.ts";
import {
  ConnectionPool,
  type SendOptions,
  type StoreConnection,
  type TransportOptions,
} from "../transport.ts";

export { RETRY };

/**
 * Fields a request adds to its region's `Context`: the locks a read may ignore
 * (`resolved_locks`) or read through (`committed_locks`). The region request sender builds
 * the Context from the region alone, so they travel beside the body under this symbol (object
 * spread copies symbol keys; protobuf encoding ignores them) and `TxnConnectionPool` merges
 * them in just before sending.
 */
export const CONTEXT_EXTRAS = Symbol("basalt.contextExtras");

/** What `CONTEXT_EXTRAS` may carry. */
export type ContextExtras = Pick<kvrpcpb.Context.$Properties, "resolvedLocks" | "committedLocks">;

/** `body` with context extras attached (see `CONTEXT_EXTRAS`). */
export function withContextExtras<T extends object>(body: T, extras: ContextExtras): T {
  return Object.assign(body, { [CONTEXT_EXTRAS]: extras });
}

/** A connection pool whose connections merge `CONTEXT_EXTRAS` into the request's Context. */
export class TxnConnectionPool extends ConnectionPool {
  readonly #views = new WeakMap<StoreConnection, StoreConnection>();

  constructor(options: TransportOptions = {}) {
    super(options);
  }

  override get(address: string): StoreConnection {
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
function contextMergingView(connection: StoreConnection): StoreConnection {
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

/** Keys (or items carrying keys) of one region. */
export interface RegionGroup<T> {
  region: RegionInfo;
  items: T[];
}

/** Region-aware request helpers of one `TxnKV`. */
export class TxnRpc {
  readonly sender: RegionRequestSender;

  constructor(readonly resolver: RegionResolver, readonly pool: ConnectionPool) {
    this.sender = new RegionRequestSender(resolver, pool);
  }

  /** A backoffer whose deadline is `timeoutMs` from now. */
  backoffer(timeoutMs: number): Backoffer {
    return new Backoffer(Date.now() + timeoutMs);
  }

  /** The region holding `key`. */
  locate(key: Uint8Array, backoffer: Backoffer): Promise<RegionInfo> {
    return this.sender.locate(() => this.resolver.locateKey(key, backoffer), backoffer);
  }

  /** Sends `cmd` once to `region`; RETRY when the caller must locate again. */
  sendToRegion<C extends CommandName>(
    cmd: C,
    region: RegionInfo,
    body: RequestBody<C>,
    options: { backoffer: Backoffer; idempotent: boolean },
  ): Promise<ResponseOf<C> | typeof RETRY> {
    return this.sender.send(cmd, region, body, options);
  }

  /** Sends `cmd` to the region of `key` until a region answers it. */
  async sendToKey<C extends CommandName>(
    cmd: C,
    key: Uint8Array,
    body: (region: RegionInfo) => RequestBody<C>,
    options: { backoffer: Backoffer; idempotent: boolean },
  ): Promise<ResponseOf<C>> {
    for (;;) {
      const region = await this.locate(key, options.backoffer);
      const response = await this.sender.send(cmd, region, body(region), options);
      if (response !== RETRY) return response;
    }
  }

  /** `items` grouped by the region holding `keyOf(item)`, in first-seen order of regions. */
  async groupByRegion<T>(
    items: readonly T[],
    keyOf: (item: T) => Uint8Array,
    backoffer: Backoffer,
  ): Promise<RegionGroup<T>[]> {
    const groups = new Map<bigint, RegionGroup<T>>();
    for (const item of items) {
      const region = await this.locate(keyOf(item), backoffer);
      let group = groups.get(region.id);
      if (group === undefined) groups.set(region.id, group = { region, items: [] });
      group.items.push(item);
    }
    return [...groups.values()];
  }

  /**
   * Runs `send` for every chunk of `items` per region, at most `concurrency` at once; a
   * chunk for which `send` returns RETRY is regrouped and sent again. Rejects with the first
   * failure (the others still settle).
   */
  async forEachRegionBatch<T>(
    items: readonly T[],
    how: {
      keyOf: (item: T) => Uint8Array;
      chunk: (items: T[]) => T[][];
      backoffer: Backoffer;
      concurrency: number;
      send: (region: RegionInfo, items: T[]) => Promise<void | typeof RETRY>;
    },
  ): Promise<void> {
    const groups = await this.groupByRegion(items, how.keyOf, how.backoffer);
    const tasks = groups.flatMap(({ region, items }) =>
      how.chunk(items).map((part) => ({ region, part }))
    );
    await runLimited(tasks, how.concurrency, async ({ region, part }) => {
      const outcome = await how.send(region, part);
      if (outcome === RETRY) await this.forEachRegionBatch(part, how);
    });
  }
}

/** Runs `work` over `tasks`, at most `limit` at a time; rejects with the first failure. */
export async function runLimited<T>(
  tasks: readonly T[],
  limit: number,
  work: (task: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < tasks.length && failure === null) {
      try {
        await work(tasks[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** Splits `items` into chunks of at most `maxItems` items and `maxBytes` bytes (by `sizeOf`). */
export function chunkBySize<T>(
  items: readonly T[],
  limits: { maxItems: number; maxBytes: number; sizeOf: (item: T) => number },
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = limits.sizeOf(item);
    if (
      current.length > 0 && (current.length >= limits.maxItems || bytes + size > limits.maxBytes)
    ) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
