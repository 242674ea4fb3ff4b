/**
 * `RedisGateway`: a Redis server (RESP2/RESP3 over TCP, `Deno.listen`) whose data lives in Basalt,
 * through one `TxnKV` client shared by every connection (its connection pool and TSO stream
 * serve them all). It works the same against a standalone store and a cluster: the client finds
 * the regions.
 *
 * Owns: the listener, the connections (at most `maxClients`), the executor and the reclaimer.
 * `close()` stops accepting, closes the connections, lets the running batch finish and, when
 * it owns the client, closes it.
 *
 * @example
 * ```ts ignore
 * const kv = await TxnKV.connect({ host: "127.0.0.1:20160" });
 * const gateway = await RedisGateway.start({ hostname: "127.0.0.1", port: 6379, kv });
 * // redis-cli -p 6379 set k v
 * await gateway.close();
 * ```
 */
import type { TxnKV } from "../../client/mod.ts";
import { REDIS_MAX_CLIENTS, REDIS_RECLAIM_INTERVAL_MS } from "../../constants.ts";
import type { CommandContext } from "./command.ts";
import { serveConnection } from "./connection.ts";
import { Executor } from "./executor.ts";
import { findExpired, reclaimExpired } from "./reclaimer.ts";
import { Session } from "./session.ts";
import { GatewayState } from "./state.ts";

/** Options of `RedisGateway.start`. */
export interface RedisGatewayOptions {
  hostname: string;
  /** 0: any free port (see `port`). */
  port: number;
  kv: TxnKV;
  /** Close `kv` with the gateway (default false). */
  ownsClient?: boolean;
  /** Most connections (default REDIS_MAX_CLIENTS). */
  maxClients?: number;
  /** Interval of the expiry reclaimer, ms (default REDIS_RECLAIM_INTERVAL_MS; 0 = off). */
  reclaimIntervalMs?: number;
  /** Told of a connection that failed for a reason other than the peer leaving. */
  onError?: (error: unknown) => void;
}

/** A running Redis gateway. */
export class RedisGateway {
  readonly state: GatewayState;
  readonly #listener: Deno.TcpListener;
  readonly #executor: Executor;
  readonly #connections = new Set<Deno.Conn>();
  readonly #options: RedisGatewayOptions;
  #reclaimTimer: ReturnType<typeof setInterval> | undefined;
  /** The running reclaimer round (close waits for it). */
  #reclaiming: Promise<void> | null = null;
  #accepting: Promise<void>;
  #closed = false;
  #nextClientId = 1;

  private constructor(listener: Deno.TcpListener, options: RedisGatewayOptions) {
    this.#listener = listener;
    this.#options = options;
    this.state = new GatewayState(options.kv, options.maxClients ?? REDIS_MAX_CLIENTS);
    this.state.port = listener.addr.port;
    this.#executor = new Executor(this.state);
    this.#accepting = this.#accept();
    const intervalMs = options.reclaimIntervalMs ?? REDIS_RECLAIM_INTERVAL_MS;
    if (intervalMs > 0) this.#reclaimTimer = setInterval(() => this.#reclaim(), intervalMs);
  }

  /** Listens on `hostname:port` and serves. */
  static start(options: RedisGatewayOptions): Promise<RedisGateway> {
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    return Promise.resolve(new RedisGateway(listener, options));
  }

  /** The bound port. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** `host:port` of the listener. */
  get addr(): string {
    return `${this.#listener.addr.hostname}:${this.#listener.addr.port}`;
  }

  /** Runs one reclaimer round now (tests); resolves with the keys it deleted. */
  async reclaimNow(): Promise<number> {
    const keys = await findExpired(this.state.kv, Date.now());
    if (keys.length === 0) return 0;
    const argumentBytes = keys.reduce((sum, key) => sum + key.length, 0);
    const reply = await this.#executor.submit({
      session: new Session(0, "reclaimer"),
      needsTxn: true,
      keys,
      storageKeys: [],
      global: false,
      writes: true,
      argumentBytes,
      run: (ctx: CommandContext) => reclaimExpired(ctx, keys),
    });
    return typeof reply === "number" ? reply : 0;
  }

  #reclaim(): void {
    if (this.#reclaiming !== null || this.#closed) return;
    this.#reclaiming = this.reclaimNow()
      .then(() => {}, (error) => {
        if (!this.#closed) this.#options.onError?.(error);
      })
      .finally(() => this.#reclaiming = null);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closed) return;
        if (error instanceof Deno.errors.BadResource) return;
        this.#options.onError?.(error);
        continue;
      }
      this.state.stats.totalConnectionsReceived++;
      if (this.#connections.size >= this.state.maxClients) {
        this.state.stats.rejectedConnections++;
        void refuse(conn);
        continue;
      }
      conn.setNoDelay(true);
      this.#serve(conn);
    }
  }

  #serve(conn: Deno.TcpConn): void {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const session = new Session(this.#nextClientId++, `${remote.hostname}:${remote.port}`);
    this.#connections.add(conn);
    this.state.connectedClients++;
    serveConnection(conn, session, { state: this.state, executor: this.#executor })
      .catch((error) => this.#options.onError?.(error))
      .finally(() => {
        this.#connections.delete(conn);
        this.state.connectedClients--;
      });
  }

  /** Stops accepting, closes every connection, stops the executor (and the client if owned). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#reclaimTimer);
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#connections) {
      try {
        conn.close();
      } catch { /* closed by its reader */ }
    }
    await this.#reclaiming;
    await this.#executor.stop();
    if (this.#options.ownsClient ?? false) await this.#options.kv.close();
  }
}

async function refuse(conn: Deno.Conn): Promise<void> {
  try {
    await conn.write(new TextEncoder().encode("-ERR max number of clients reached\r\n"));
  } catch { /* gone already */ }
  try {
    conn.close();
  } catch { /* closed */ }
}
