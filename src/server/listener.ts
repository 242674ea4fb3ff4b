/**
 * The TCP accept loop of both store ports, and the descriptor budget they share.
 *
 * Why our own loop over `Deno.listen` rather than `node:net` (which grpc-js's `bindAsync` and
 * `node:http` use): measured on Deno 2.9.6, a `node:net` server whose accept fails with EMFILE
 * stops accepting for good, silently, even after descriptors are free again — the port stays
 * bound and every later client waits in the backlog. `Deno.Listener.accept()` rejects instead,
 * so this loop catches the error, logs it, waits (ACCEPT_RETRY_MIN_MS doubling to
 * ACCEPT_RETRY_MAX_MS) and accepts again: running out of descriptors never kills the process
 * nor the port.
 *
 * Invariants: at most `maxConnections` accepted connections are open at once (one accepted past
 * the cap is closed at once, without touching the others); every accepted connection is
 * released exactly once; after `close()` nothing more is accepted.
 */
import {
  ACCEPT_RETRY_MAX_MS,
  ACCEPT_RETRY_MIN_MS,
  FD_CONNECTION_SHARE,
  FD_LIMIT_MIN,
  FD_ROCKSDB_SHARE,
  STATUS_MAX_CONNECTIONS,
} from "../constants.ts";
import type { Logger } from "./log.ts";

/** What a listener does with each accepted connection. */
export interface ListenerOptions {
  /** The port's name in log lines ("grpc", "status"). */
  name: string;
  maxConnections: number;
  log: Logger;
  /**
   * Takes over `conn`; calls `release` once when it is closed (the slot is then free). A throw
   * closes the connection and releases it.
   */
  onConnection(conn: Deno.TcpConn, release: () => void): void;
}

/** A bound TCP port accepting connections up to a cap. */
export class ConnectionListener {
  readonly #listener: Deno.TcpListener;
  readonly #options: ListenerOptions;
  #open = 0;
  #closed = false;
  /** Connections closed on accept because the cap was reached. */
  refused = 0;
  /** Accepts that failed (descriptor exhaustion and the like). */
  acceptErrors = 0;
  /** Resolves when the accept loop has ended. */
  readonly done: Promise<void>;

  private constructor(listener: Deno.TcpListener, options: ListenerOptions) {
    if (!(Number.isSafeInteger(options.maxConnections) && options.maxConnections >= 1)) {
      throw new RangeError(`${options.name}: maxConnections ${options.maxConnections}`);
    }
    this.#listener = listener;
    this.#options = options;
    this.done = this.#run();
  }

  /** Binds `hostname:port` (port 0 = any free port) and starts accepting. */
  static listen(
    address: { hostname: string; port: number },
    options: ListenerOptions,
  ): ConnectionListener {
    return new ConnectionListener(Deno.listen({ ...address, transport: "tcp" }), options);
  }

  /** The port actually bound. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Connections open now. */
  get open(): number {
    return this.#open;
  }

  /** Stops accepting; open connections are left to their owners. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
  }

  async #run(): Promise<void> {
    const { log, name } = this.#options;
    let retryMs = ACCEPT_RETRY_MIN_MS;
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
        retryMs = ACCEPT_RETRY_MIN_MS;
      } catch (error) {
        if (this.#closed) return;
        this.acceptErrors++;
        // One line per run of failures: the first, then each time the pause grows.
        if (retryMs < ACCEPT_RETRY_MAX_MS || this.acceptErrors % 100 === 1) {
          log.warn("accept failed; retrying", {
            port: name,
            error: String(error),
            retryMs,
            open: this.#open,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, retryMs));
        retryMs = Math.min(retryMs * 2, ACCEPT_RETRY_MAX_MS);
        continue;
      }
      this.#admit(conn);
    }
  }

  #admit(conn: Deno.TcpConn): void {
    if (this.#open >= this.#options.maxConnections) {
      this.refused++;
      this.#options.log.debug("connection refused: too many open", {
        port: this.#options.name,
        open: this.#open,
      });
      try {
        conn.close();
      } catch { /* the peer is gone already */ }
      return;
    }
    this.#open++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#open--;
    };
    try {
      this.#options.onConnection(conn, release);
    } catch (error) {
      this.#options.log.error("cannot serve a connection", {
        port: this.#options.name,
        error: String(error),
      });
      release();
      try {
        conn.close();
      } catch { /* closed by the failed handler */ }
    }
  }
}

/** How the descriptors of a process are shared out. */
export interface DescriptorBudget {
  /** The open-file limit the budget is made from. */
  openFileLimit: number;
  /** gRPC connections: the configured cap, lowered to fit the limit. */
  grpcMaxConnections: number;
  /** Status connections (STATUS_MAX_CONNECTIONS). */
  statusMaxConnections: number;
  /** RocksDB's `max_open_files`. */
  rocksdbMaxOpenFiles: number;
}

/**
 * Shares `openFileLimit` descriptors out: FD_CONNECTION_SHARE of them to connections of both
 * ports, FD_ROCKSDB_SHARE to RocksDB's table files, the rest to WALs, workers and the runtime.
 * Throws when the limit is below FD_LIMIT_MIN.
 */
export function descriptorBudget(
  openFileLimit: number,
  configuredMaxConnections: number,
): DescriptorBudget {
  if (openFileLimit < FD_LIMIT_MIN) {
    throw new Error(
      `the open-file limit is ${openFileLimit}, below the ${FD_LIMIT_MIN} a store needs ` +
        `(raise it with ulimit -n)`,
    );
  }
  const limit = Math.min(openFileLimit, Number.MAX_SAFE_INTEGER);
  const connections = Math.floor(limit * FD_CONNECTION_SHARE);
  const budget: DescriptorBudget = {
    openFileLimit: limit,
    grpcMaxConnections: Math.min(configuredMaxConnections, connections - STATUS_MAX_CONNECTIONS),
    statusMaxConnections: STATUS_MAX_CONNECTIONS,
    rocksdbMaxOpenFiles: Math.floor(limit * FD_ROCKSDB_SHARE),
  };
  if (!(budget.grpcMaxConnections >= 1)) {
    throw new Error(`descriptor budget leaves no gRPC connection: ${JSON.stringify(budget)}`);
  }
  return budget;
}
