/**
 * Test harness of the Redis gateway: a gateway (in the test process) over a real standalone
 * store or a real 3-store cluster (tests/e2e), a `redis-cli` runner with a deadline, and a raw
 * RESP connection for byte-level checks.
 */
import { TxnKV } from "../../src/client/mod.ts";
import { RedisGateway } from "../../src/gateway/redis/mod.ts";
import { startServer, type TestServer } from "../e2e/lib.ts";
import { type Cluster, startCluster } from "../e2e/cluster.ts";

/** Longest a redis-cli call or a raw read may take. */
export const REDIS_TEST_DEADLINE_MS = 20_000;

/** A gateway and what it runs over. */
export interface GatewayFixture {
  gateway: RedisGateway;
  port: number;
  /** The store's gRPC address (standalone) or PD's (cluster). */
  storeAddr: string;
  stop(): Promise<void>;
}

/** A gateway over a fresh standalone store. */
export async function standaloneGateway(
  options: { reclaimIntervalMs?: number } = {},
): Promise<GatewayFixture> {
  const server: TestServer = await startServer();
  const kv = await TxnKV.connect({ host: server.grpcAddr });
  const gateway = await RedisGateway.start({
    hostname: "127.0.0.1",
    port: 0,
    kv,
    ownsClient: true,
    reclaimIntervalMs: options.reclaimIntervalMs ?? 0,
    onError: (error) => console.error("gateway error", error),
  });
  return {
    gateway,
    port: gateway.port,
    storeAddr: server.grpcAddr,
    stop: async () => {
      await gateway.close();
      await server.stop();
      await Deno.remove(server.dataDir.replace(/\/data$/, ""), { recursive: true });
    },
  };
}

/** A gateway over a fresh cluster of 3 stores (replicas on all three). */
export async function clusterGateway(): Promise<GatewayFixture> {
  const cluster: Cluster = await startCluster({ stores: 3 });
  const kv = await TxnKV.connect({ pd: [cluster.pdAddr] });
  const gateway = await RedisGateway.start({
    hostname: "127.0.0.1",
    port: 0,
    kv,
    ownsClient: true,
    reclaimIntervalMs: 0,
    onError: (error) => console.error("gateway error", error),
  });
  return {
    gateway,
    port: gateway.port,
    storeAddr: cluster.pdAddr,
    stop: async () => {
      await gateway.close();
      await cluster.stop();
    },
  };
}

/** Runs `redis-cli -p PORT ...args` (raw output, no tty); resolves with its stdout. */
export async function redisCli(port: number, args: string[], stdin?: string): Promise<string> {
  const command = new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(REDIS_TEST_DEADLINE_MS),
  });
  const child = command.spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  return new TextDecoder().decode(output.stdout);
}

/** A raw TCP connection speaking bytes (protocol-level tests). */
export class RawConnection {
  readonly #conn: Deno.Conn;
  #received = new Uint8Array(0);

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<RawConnection> {
    return new RawConnection(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Reads until `bytes` bytes arrived (or the peer closed); resolves with them as text. */
  async receive(bytes: number): Promise<string> {
    const deadline = Date.now() + REDIS_TEST_DEADLINE_MS;
    while (this.#received.length < bytes) {
      if (Date.now() > deadline) throw new Error(`no ${bytes} bytes within the deadline`);
      const buffer = new Uint8Array(64 * 1024);
      const count = await this.#conn.read(buffer);
      if (count === null) break;
      const joined = new Uint8Array(this.#received.length + count);
      joined.set(this.#received);
      joined.set(buffer.subarray(0, count), this.#received.length);
      this.#received = joined;
    }
    const out = this.#received.subarray(0, bytes);
    this.#received = this.#received.slice(out.length);
    return new TextDecoder().decode(out);
  }

  /** Resolves with whatever arrives until the peer closes (bounded by the deadline). */
  async receiveUntilClosed(): Promise<{ text: string; closed: boolean }> {
    const timer = setTimeout(() => this.close(), REDIS_TEST_DEADLINE_MS);
    let text = new TextDecoder().decode(this.#received);
    try {
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const count = await this.#conn.read(buffer);
        if (count === null) return { text, closed: true };
        text += new TextDecoder().decode(buffer.subarray(0, count));
      }
    } catch {
      return { text, closed: false };
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}
