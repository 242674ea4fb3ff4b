/**
 * Basalt's key-value API: `Basalt.open({ dataDir })` runs a standalone store inside this
 * process (no network); `Basalt.connect({ host } | { pd })` reaches a running store or cluster.
 * Both offer get, put (with TTL), delete, scan and `transaction` (retried on conflict), and
 * fail with `BasaltError` (a stable `code`). The data lives under the key-value prefix of
 * `layout.ts`, so a directory written in-process can be served by `deno task serve` and read
 * back over the network (the client, or the HTTP API of src/gateway/http/).
 *
 * @example
 * ```ts ignore
 * import { Basalt } from "./mod.ts";
 * const db = await Basalt.open({ dataDir: "./data" });
 * await db.put("k", "v", { ttlSeconds: 60 });
 * console.log(new TextDecoder().decode((await db.get("k"))!));
 * await db.close();
 * ```
 *
 * @module
 */
export {
  Basalt,
  type Bytes,
  type CommonOptions,
  type ConnectOptions,
  type Entry,
  type OpenOptions,
  type PutOptions,
  type ScanOptions,
  type ScanPage,
  type TransactionOptions,
} from "./basalt.ts";
export { BasaltTransaction } from "./transaction.ts";
export { BasaltError, type BasaltErrorCode } from "./errors.ts";
