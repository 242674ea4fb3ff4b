/**
 * A TCP proxy for one network link of an end-to-end cluster: it listens on 127.0.0.1 (port 0)
 * and forwards every connection it accepts to one target address, byte for byte, so a test can
 * cut, heal and slow the link between two real processes.
 *
 * Invariants:
 * - Bytes of one direction of one connection are forwarded in the order they arrived, each
 *   chunk no earlier than the delay in force when it was read (`delay(ms)`).
 * - While the link is cut, no byte crosses it: `cut()` closes every live connection on both
 *   sides (each peer reads end-of-stream at once, so an HTTP/2 session and its gRPC streams fail
 *   promptly), and a connection accepted during the cut is closed before it is forwarded (it
 *   never reaches the target). The listener stays bound, so `heal()` cannot lose the port.
 * - Bounded: at most `LINK_PROXY_MAX_CONNECTIONS` connections at once (more are closed on
 *   accept) and at most `LINK_PROXY_MAX_QUEUED_BYTES` queued per direction of a connection (the
 *   reader waits for the writer beyond it); `close()` ends within `LINK_PROXY_CLOSE_TIMEOUT_MS`.
 *
 * Built on `Deno.listen`/`Deno.connect` (not `node:net`): the forwarding loop reads and writes
 * explicitly, which is what per-chunk delay and exact byte counts need.
 */

/** Connections a proxy forwards at once; a connection accepted beyond it is closed. */
export const LINK_PROXY_MAX_CONNECTIONS = 64;
/** Bytes read and not yet written, per direction of a connection; reading pauses beyond it. */
export const LINK_PROXY_MAX_QUEUED_BYTES = 1024 * 1024;
/** The size of one read from a socket (a chunk, the unit of delay). */
export const LINK_PROXY_READ_BYTES = 64 * 1024;
/** How long `close()` waits for every connection's forwarding loops to end. */
export const LINK_PROXY_CLOSE_TIMEOUT_MS = 5_000;
/** How long a connect to the target may take before the client's connection is closed. */
export const LINK_PROXY_CONNECT_TIMEOUT_MS = 5_000;

if (LINK_PROXY_READ_BYTES > LINK_PROXY_MAX_QUEUED_BYTES) {
  throw new RangeError("LINK_PROXY_READ_BYTES must not exceed LINK_PROXY_MAX_QUEUED_BYTES");
}

/** What a proxy has done since it started. */
export interface LinkProxyStats {
  /** Connections accepted and forwarded to the target. */
  connectionsForwarded: number;
  /** Connections accepted and closed unforwarded: cut, full, closing or target unreachable. */
  connectionsRefused: number;
  /** Connections forwarding now. */
  connectionsOpen: number;
  /** Bytes written to the target (client → target). */
  bytesToTarget: number;
  /** Bytes written back to clients (target → client). */
  bytesFromTarget: number;
  /** The most bytes ever queued in one direction of one connection. */
  peakQueuedBytes: number;
}

/** One queued chunk: bytes, and the time (ms since the epoch) they may be written. */
interface Chunk {
  bytes: Uint8Array;
  dueMs: number;
}

/**
 * Wakes every waiter on `notify()`. Waiters re-check their condition after waking, so a
 * wake-up that finds nothing to do is harmless and none is lost.
 */
class Notifier {
  #waiters: (() => void)[] = [];

  /** Resolves at the next `notify()`, or after `timeoutMs` when given. */
  wait(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((waiter) => waiter !== wake);
          resolve();
        }, timeoutMs);
      }
      this.#waiters.push(wake);
    });
  }

  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** One forwarded connection: both sockets and its state. */
interface Link {
  client: Deno.Conn;
  target: Deno.Conn;
  closed: boolean;
  /** Notified when a chunk is queued or written, a direction ends, or the link closes. */
  changed: Notifier;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/**
 * A TCP proxy from 127.0.0.1:`port` to `target`. Start one with `LinkProxy.start(target)`.
 *
 * @example
 * ```ts
 * const proxy = LinkProxy.start("127.0.0.1:20160");
 * // dial proxy.addr instead of the target…
 * proxy.cut(); // every connection through it closes; new ones are closed on accept
 * proxy.heal();
 * await proxy.close();
 * ```
 */
export class LinkProxy {
  readonly #listener: Deno.Listener;
  readonly #target: { hostname: string; port: number };
  readonly #links = new Set<Link>();
  /** Every accepted connection's forwarding, from accept (connect included) to its end. */
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #cut = false;
  #closing = false;
  #delayMs = 0;
  readonly #stats: LinkProxyStats = {
    connectionsForwarded: 0,
    connectionsRefused: 0,
    connectionsOpen: 0,
    bytesToTarget: 0,
    bytesFromTarget: 0,
    peakQueuedBytes: 0,
  };

  private constructor(readonly target: string) {
    const colon = target.lastIndexOf(":");
    const port = Number(target.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new RangeError(`LinkProxy: target "${target}" is not host:port`);
    }
    this.#target = { hostname: target.slice(0, colon), port };
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#acceptLoop();
  }

  /** Starts a proxy to `target` (host:port) on a free loopback port. */
  static start(target: string): LinkProxy {
    return new LinkProxy(target);
  }

  /** The address to dial instead of the target: `127.0.0.1:<port>`. */
  get addr(): string {
    return `127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  /** A copy of the counters. */
  get stats(): LinkProxyStats {
    return { ...this.#stats, connectionsOpen: this.#links.size };
  }

  /** Whether the link is cut. */
  get isCut(): boolean {
    return this.#cut;
  }

  /** Closes every live connection, on both sides; until `heal()`, new ones are closed on accept. */
  cut(): void {
    this.#cut = true;
    for (const link of this.#links) this.#closeLink(link);
  }

  /** Forwards new connections again (the ones `cut()` closed stay closed: peers reconnect). */
  heal(): void {
    this.#cut = false;
  }

  /** Delays every chunk read from now on by `ms` before it is written (0: no delay). */
  delay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`LinkProxy: delay ${ms} ms`);
    this.#delayMs = ms;
  }

  /**
   * Stops listening and closes every connection; resolves when every forwarding loop ended,
   * and fails, naming how many are left, when that takes over LINK_PROXY_CLOSE_TIMEOUT_MS.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      try {
        this.#listener.close();
      } catch { /* already closed */ }
    }
    for (const link of this.#links) this.#closeLink(link);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), LINK_PROXY_CLOSE_TIMEOUT_MS);
    });
    const outcome = await Promise.race([
      Promise.all([this.#accepting, ...this.#tasks]),
      late,
    ]);
    clearTimeout(timer);
    if (outcome === "late") {
      throw new Error(
        `LinkProxy ${this.addr} → ${this.target}: ${this.#tasks.size} connections still open ` +
          `${LINK_PROXY_CLOSE_TIMEOUT_MS} ms after close()`,
      );
    }
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // The listener was closed.
      }
      if (this.#cut || this.#closing || this.#tasks.size >= LINK_PROXY_MAX_CONNECTIONS) {
        this.#stats.connectionsRefused += 1;
        closeQuietly(client);
        continue;
      }
      // Not awaited: each connection forwards on its own while the loop accepts the next.
      const task: Promise<void> = this.#forward(client).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
    }
  }

  /** Connects to the target for `client` and forwards both ways until either side ends. */
  async #forward(client: Deno.Conn): Promise<void> {
    const target = await this.#connectTarget();
    // The link may have been cut (or closed) while the connect was under way.
    if (target === null || this.#cut || this.#closing) {
      this.#stats.connectionsRefused += 1;
      closeQuietly(client);
      if (target !== null) closeQuietly(target);
      return;
    }
    this.#stats.connectionsForwarded += 1;
    const link: Link = {
      client,
      target,
      closed: false,
      changed: new Notifier(),
    };
    this.#links.add(link);
    try {
      await Promise.all([
        this.#pump(link, { from: client, to: target, counter: "bytesToTarget" }),
        this.#pump(link, { from: target, to: client, counter: "bytesFromTarget" }),
      ]);
    } finally {
      this.#closeLink(link);
      this.#links.delete(link);
    }
  }

  async #connectTarget(): Promise<Deno.Conn | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Deno.connect({ ...this.#target, transport: "tcp" });
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), LINK_PROXY_CONNECT_TIMEOUT_MS);
    });
    try {
      const conn = await Promise.race([connecting, late]);
      // A connect that completes after the deadline is closed unused.
      if (conn === null) connecting.then(closeQuietly, () => {});
      return conn;
    } catch {
      return null; // Refused: the target is down.
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Forwards one direction of `link`: a reader queues chunks (waiting while the queue holds
   * LINK_PROXY_MAX_QUEUED_BYTES), a writer writes each when it is due, in order. End-of-stream
   * from `from` half-closes `to`; an error on either side closes the whole link.
   */
  async #pump(
    link: Link,
    options: { from: Deno.Conn; to: Deno.Conn; counter: "bytesToTarget" | "bytesFromTarget" },
  ): Promise<void> {
    const queue: Chunk[] = [];
    let queuedBytes = 0;
    let ended = false;

    const reader = async () => {
      try {
        for (;;) {
          while (queuedBytes >= LINK_PROXY_MAX_QUEUED_BYTES && !link.closed) {
            await link.changed.wait();
          }
          if (link.closed) return;
          const buffer = new Uint8Array(LINK_PROXY_READ_BYTES);
          const read = await options.from.read(buffer);
          if (read === null) return;
          queue.push({ bytes: buffer.subarray(0, read), dueMs: Date.now() + this.#delayMs });
          queuedBytes += read;
          this.#stats.peakQueuedBytes = Math.max(this.#stats.peakQueuedBytes, queuedBytes);
          link.changed.notify();
        }
      } catch {
        this.#closeLink(link);
      } finally {
        ended = true;
        link.changed.notify();
      }
    };

    const writer = async () => {
      try {
        for (;;) {
          if (link.closed) return;
          const chunk = queue[0];
          if (chunk === undefined) {
            if (ended) break;
            await link.changed.wait();
            continue;
          }
          const waitMs = chunk.dueMs - Date.now();
          if (waitMs > 0) {
            await link.changed.wait(waitMs); // Woken early only to notice a close.
            continue;
          }
          await writeAll(options.to, chunk.bytes);
          queue.shift();
          queuedBytes -= chunk.bytes.length;
          this.#stats[options.counter] += chunk.bytes.length;
          link.changed.notify();
        }
        await options.to.closeWrite();
      } catch {
        this.#closeLink(link);
      }
    };

    await Promise.all([reader(), writer()]);
  }

  #closeLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    closeQuietly(link.client);
    closeQuietly(link.target);
    link.changed.notify();
  }
}
