/**
 * `HttpGateway`: Basalt's HTTP API (`Deno.serve`) over one `Basalt` — which is a client of a
 * standalone store or of a cluster (`Basalt.connect`), or a store in this process
 * (`Basalt.open`). Routes: `/v1/kv/{key}` and `/v1/kv` (`kv_routes.ts`), `/v1/txn`
 * (`txn_route.ts`), `/v1/openapi.json` (`openapi.ts`); any other path is 404 JSON, any other
 * method 405 JSON with `Allow`.
 *
 * Bounds: a request body is at most HTTP_MAX_BODY_BYTES and must arrive within
 * HTTP_BODY_READ_TIMEOUT_MS (`body.ts`); a scan page and a transaction are bounded by the KV_*
 * and HTTP_TXN_MAX_OPS constants. What `Deno.serve` does not bound (measured for the status
 * server, src/server/http1.ts): connection count, idle and slow-header connections — so the
 * gateway listens on loopback by default and belongs behind a proxy when exposed.
 *
 * @example
 * ```ts ignore
 * const db = await Basalt.connect({ pd: ["127.0.0.1:2379"] });
 * const gateway = await HttpGateway.start({ hostname: "127.0.0.1", port: 8080, db, ownsDb: true });
 * // curl -X PUT --data-binary v http://127.0.0.1:8080/v1/kv/k
 * await gateway.close();
 * ```
 */
import { HTTP_BODY_READ_TIMEOUT_MS, HTTP_MAX_BODY_BYTES } from "../../constants.ts";
import type { Basalt } from "../../embedded/basalt.ts";
import type { BodyLimits } from "./body.ts";
import { percentDecode } from "./codec.ts";
import { errorResponse, HttpError, httpErrorOf, jsonResponse } from "./errors.ts";
import { deleteKey, getKey, putKey, scanKeys } from "./kv_routes.ts";
import { openApiDocument } from "./openapi.ts";
import { postTxn } from "./txn_route.ts";

/** Options of `HttpGateway.start`. */
export interface HttpGatewayOptions {
  hostname: string;
  /** 0: any free port (see `port`). */
  port: number;
  db: Basalt;
  /** Close `db` with the gateway (default false). */
  ownsDb?: boolean;
  /** Largest request body (default HTTP_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  /** Told of a request that failed for a reason other than the API's (answered 500). */
  onError?: (error: unknown) => void;
}

const KEY_PATH = "/v1/kv/";

function methodNotAllowed(allow: string[]): HttpError {
  return new HttpError(405, "method_not_allowed", `allowed: ${allow.join(", ")}`, {}, {
    allow: allow.join(", "),
  });
}

/** A running HTTP gateway. */
export class HttpGateway {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #options: HttpGatewayOptions;
  readonly #limits: BodyLimits;
  #closed: Promise<void> | null = null;

  private constructor(options: HttpGatewayOptions) {
    this.#options = options;
    this.#limits = {
      maxBytes: options.maxBodyBytes ?? HTTP_MAX_BODY_BYTES,
      timeoutMs: HTTP_BODY_READ_TIMEOUT_MS,
    };
    this.#server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: () => {}, // the caller prints its own ready line
    }, (request) => this.handle(request));
  }

  /** Listens on `hostname:port` and serves. */
  static start(options: HttpGatewayOptions): Promise<HttpGateway> {
    return Promise.resolve(new HttpGateway(options));
  }

  /** The bound port. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** `host:port` of the listener. */
  get addr(): string {
    const { hostname, port } = this.#server.addr;
    return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  }

  /** Answers one request (the server's handler; tests may call it directly). */
  async handle(request: Request): Promise<Response> {
    try {
      return await this.#route(request);
    } catch (error) {
      const refusal = httpErrorOf(error);
      if (refusal !== null) return errorResponse(refusal);
      this.#options.onError?.(error);
      return errorResponse(new HttpError(500, "internal", "internal error"));
    }
  }

  #route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    const { db } = this.#options;
    const method = request.method;
    if (path === "/v1/kv" || path === "/v1/kv/") {
      if (method === "GET") return scanKeys(db, url);
      throw methodNotAllowed(["GET"]);
    }
    if (path.startsWith(KEY_PATH)) {
      const key = percentDecode(path.slice(KEY_PATH.length));
      if (method === "GET") return getKey(db, { request, url, key });
      if (method === "PUT") return putKey(db, { request, url, key, limits: this.#limits });
      if (method === "DELETE") return deleteKey(db, key);
      throw methodNotAllowed(["GET", "PUT", "DELETE"]);
    }
    if (path === "/v1/txn") {
      if (method === "POST") return postTxn(db, request, this.#limits);
      throw methodNotAllowed(["POST"]);
    }
    if (path === "/v1/openapi.json") {
      if (method === "GET") return Promise.resolve(jsonResponse(200, openApiDocument()));
      throw methodNotAllowed(["GET"]);
    }
    throw new HttpError(404, "not_found", `no such path: ${path}`, { path });
  }

  /** Stops accepting, lets requests under way finish, then closes `db` when it owns it. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#server.shutdown();
      if (this.#options.ownsDb) await this.#options.db.close();
    })();
    return this.#closed;
  }
}
