/**
 * Basalt, a distributed transactional key-value store: the public modules.
 *
 * - `Basalt` (src/embedded/): the key-value API — `Basalt.open({ dataDir })` runs a standalone
 *   store inside this process, `Basalt.connect({ host } | { pd })` reaches a running one; get,
 *   put with TTL, delete, scan, `transaction` with retries; `BasaltError` with a stable code.
 * - `HttpGateway` (src/gateway/http/): the same API over HTTP.
 * - The kvproto-level clients `RawKV` and `TxnKV` are the `./client` export (src/client/mod.ts).
 *
 * @example
 * ```ts ignore
 * import { Basalt } from "./mod.ts";
 * const db = await Basalt.open({ dataDir: "./data" });
 * await db.put("k", "v", { ttlSeconds: 60 });
 * await db.transaction(async (txn) => {
 *   txn.put("k2", (await txn.get("k")) ?? "none");
 * });
 * await db.close(); // `deno task serve -- --data-dir ./data` serves the same data afterwards
 * ```
 *
 * @module
 */
export {
  Basalt,
  BasaltError,
  type BasaltErrorCode,
  BasaltTransaction,
  type Bytes,
  type ConnectOptions,
  type Entry,
  type OpenOptions,
  type PutOptions,
  type ScanOptions,
  type ScanPage,
  type TransactionOptions,
} from "./src/embedded/mod.ts";
export { HttpGateway, type HttpGatewayOptions } from "./src/gateway/http/mod.ts";
