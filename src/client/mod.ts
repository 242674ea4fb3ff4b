/**
 * Basalt's TypeScript client: it speaks only the kvproto protocol (`tikvpb.Tikv` on stores,
 * `pdpb.PD` on PD), as TiKV's own clients do.
 *
 * - `RawKV` (`raw.ts`): the raw key-value API.
 * - `StoreConnection` / `ConnectionPool` (`transport.ts`): batched BatchCommands streams and unary
 *   calls to a store, `send(cmd, request)` for any command — the base of every client.
 * - `RegionResolver` (`region_resolver.ts`) with `StandaloneResolver` and `PdResolver`; the
 *   `RegionCache` (with a TTL); `RegionRequestSender` (region errors, retries) and `Backoffer`.
 * - `splitRegions` (`split_regions.ts`): SplitRegion by key, behind `RawKV.splitRegions` and
 *   `TxnKV.splitRegions`.
 * - Errors (`errors.ts`): every failure is a `ClientError` with a stable `code`.
 *
 * @module
 */
export { Backoffer, type BackoffKind } from "./backoff.ts";
export { CachedRegionResolver, type RegionSource } from "./cached_resolver.ts";
export { type CancelTimer, type Clock, REAL_CLOCK } from "./clock.ts";
export { type CommandName, COMMANDS, type RequestOf, type ResponseOf } from "./commands.ts";
export * from "./errors.ts";
export { PdClient, type PdRegion } from "./pd_client.ts";
export { PdResolver } from "./pd_resolver.ts";
export {
  type Bytes,
  type CallOptions,
  type CasResult,
  type Checksum,
  type ConnectOptions,
  DEFAULT_SCAN_LIMIT,
  type KvPair,
  RawKV,
  type RawKVOptions,
  type ScanOptions,
} from "./raw.ts";
export {
  contextOf,
  type PeerInfo,
  regionContains,
  regionFromProto,
  type RegionInfo,
} from "./region.ts";
export { RegionCache, type RegionCacheTtl } from "./region_cache.ts";
export {
  RegionRequestSender,
  type RegionSendOptions,
  type RequestBody,
  RETRY,
} from "./region_request.ts";
export type { LookupOptions, RegionResolver } from "./region_resolver.ts";
export { splitRegions, type SplitRegionsOptions } from "./split_regions.ts";
export {
  type StandaloneOptions,
  standaloneRegion,
  StandaloneResolver,
} from "./standalone_resolver.ts";
export {
  ConnectionPool,
  noTransportStats,
  type SendOptions,
  StoreConnection,
  type StoreLink,
  type TransportOptions,
  type TransportStats,
} from "./transport.ts";
export * from "./txn/mod.ts";
