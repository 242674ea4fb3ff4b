/**
 * Basalt's HTTP API: `HttpGateway` serves one `Basalt` (src/embedded/) over HTTP — keys at
 * `/v1/kv/{key}`, scans at `/v1/kv`, transactions at `/v1/txn`, the OpenAPI document at
 * `/v1/openapi.json`. Run it with `deno task http -- --addr H:P --pd ADDR`, inside a store with
 * `deno task serve -- --http-addr H:P`, or in-process over `Basalt.open`.
 *
 * @example
 * ```ts ignore
 * import { Basalt } from "../../embedded/mod.ts";
 * import { HttpGateway } from "./mod.ts";
 * const db = await Basalt.open({ dataDir: "./data" });
 * const gateway = await HttpGateway.start({ hostname: "127.0.0.1", port: 8080, db, ownsDb: true });
 * ```
 *
 * @module
 */
export { HttpGateway, type HttpGatewayOptions } from "./gateway.ts";
export { HttpError } from "./errors.ts";
export { openApiDocument } from "./openapi.ts";
