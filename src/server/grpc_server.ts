/**
 * The gRPC server: service `tikvpb.Tikv`. The main thread only routes: a request's bytes go,
 * undecoded, to the region-group worker of the region named in its `Context`
 * (`region_workers.ts`), which decodes it (a malformed payload is the client's fault and gets
 * INVALID_ARGUMENT, where grpc-js would answer a throwing deserializer with INTERNAL), runs it
 * and returns the encoded response. Methods not listed here get grpc-js's UNIMPLEMENTED.
 *
 * Connections: the port is our own accept loop (`listener.ts`, which survives descriptor
 * exhaustion and refuses connections past `maxConnections`), and each accepted connection is
 * handed to grpc-js through its connection injector. grpc-js then applies the HTTP/2 limits,
 * each measured under Deno 2.9.6 by `tests/e2e/connection_limits_test.ts`: at most
 * `concurrentStreams` streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS), a connection
 * with no open stream for `idleTimeoutMs` is closed (whether or not it ever spoke HTTP/2), and
 * keepalive pings drop a peer that stops answering them. BatchCommands streams are flow
 * controlled per stream and per connection (`flow_control.ts`).
 */
import * as grpc from "@grpc/grpc-js";
import { Duplex } from "node:stream";
import { bytesMethod } from "../util/grpc_bytes.ts";
import { GRPC_MAX_MESSAGE_BYTES } from "../constants.ts";
import { type BatchCommandsStream, handleBatchCommands } from "./batch_commands.ts";
import type { AnyCommand } from "./command.ts";
import { COMMANDS } from "./commands.ts";
import { defaultConfig, type ServerConfig, splitAddr } from "./config.ts";
import { FlowRegistry } from "./flow_control.ts";
import { ConnectionListener } from "./listener.ts";
import { installHttp2PeerGuard } from "./http2_peer_guard.ts";
import { installGoawayGuard } from "../util/goaway_guard.ts";
import type { Logger } from "./log.ts";
import type { RequestMetrics } from "./metrics.ts";
import type { RegionWorkers } from "./region_workers.ts";
import { contextRegionId } from "./wire.ts";

/** What the gRPC handlers need. */
export interface GrpcDependencies {
  workers: RegionWorkers;
  metrics: RequestMetrics;
  log: Logger;
  slowRequestThresholdMs: number;
  /** Connection limits of the port; the default configuration's when absent. */
  edge?: GrpcEdgeSettings;
  /** Transport security of the port (`src/security/tls.ts`); plain text when absent. */
  credentials?: grpc.ServerCredentials;
  /** More services on the same port (the standalone store's `pdpb.PD` face). */
  extraServices?: {
    definition: grpc.ServiceDefinition;
    handlers: grpc.UntypedServiceImplementation;
  }[];
}

/** Connection limits of the gRPC port (`[server]` keys, fitted to the descriptor budget). */
export interface GrpcEdgeSettings {
  /** Most connections open at once; more are closed on accept. */
  maxConnections: number;
  /** Most concurrent streams per connection (TiKV's `grpc-concurrent-stream`). */
  concurrentStreams: number;
  /** A connection without open streams this long is closed; 0 = never. */
  idleTimeoutMs: number;
  /** Ping a connection silent this long (TiKV's `grpc-keepalive-time`); 0 = never. */
  keepaliveTimeMs: number;
  /** Drop it when the ping is not answered within this (TiKV's `grpc-keepalive-timeout`). */
  keepaliveTimeoutMs: number;
}

/** The edge settings of the `[server]` section; `maxConnections` as the descriptors allow. */
export function grpcEdgeSettings(
  server: ServerConfig["server"],
  maxConnections = server.maxConnections,
): GrpcEdgeSettings {
  return {
    maxConnections,
    concurrentStreams: server.grpcConcurrentStream,
    idleTimeoutMs: server.connectionIdleTimeoutMs,
    keepaliveTimeMs: server.grpcKeepaliveTimeMs,
    keepaliveTimeoutMs: server.grpcKeepaliveTimeoutMs,
  };
}

/** What a BatchCommands stream needs: the gRPC dependencies and the port's flow control. */
export type StreamDependencies = GrpcDependencies & { flow: FlowRegistry };

/** The gRPC status of a worker's failure code. */
export function grpcStatusOf(code: "invalid_argument" | "internal"): grpc.status {
  return code === "invalid_argument" ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
}

function unaryHandler(
  deps: GrpcDependencies,
  command: AnyCommand,
): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const startMs = performance.now();
    const end = deps.metrics.begin(command.name, startMs);
    const regionId = contextRegionId(call.request);
    deps.workers.unary(regionId, command.name, call.request).then((result) => {
      const endMs = performance.now();
      if (!result.ok) {
        end(result.code, endMs);
        if (result.code === "internal") {
          deps.log.error("request failed", { rpc: command.name, error: result.details });
        }
        callback({ code: grpcStatusOf(result.code), details: result.details });
        return;
      }
      end(result.outcome, endMs);
      if (endMs - startMs > deps.slowRequestThresholdMs) {
        deps.log.warn("slow request", { rpc: command.name, ms: Math.round(endMs - startMs) });
      }
      const bytes = result.bytes;
      callback(null, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });
  };
}

/** The `tikvpb.Tikv` service definition: every command, and BatchCommands. */
export function tikvServiceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const command of COMMANDS) {
    definition[command.name] = bytesMethod(`/tikvpb.Tikv/${command.name}`);
  }
  definition.BatchCommands = bytesMethod("/tikvpb.Tikv/BatchCommands", true);
  return definition;
}

/** A running gRPC server. */
export interface GrpcServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting, ends open streams, waits up to `timeoutMs` for calls, then forces. */
  shutdown(timeoutMs: number): Promise<void>;
  /** Gauges and counters of the port's connections and flow control, for /metrics. */
  stats(): Record<string, number>;
}

/** grpc-js server options for `edge`. */
function serverOptions(edge: GrpcEdgeSettings): grpc.ServerOptions {
  const options: grpc.ServerOptions = {
    "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
    "grpc.max_concurrent_streams": edge.concurrentStreams,
  };
  if (edge.idleTimeoutMs > 0) options["grpc.max_connection_idle_ms"] = edge.idleTimeoutMs;
  if (edge.keepaliveTimeMs > 0) {
    options["grpc.keepalive_time_ms"] = edge.keepaliveTimeMs;
    options["grpc.keepalive_timeout_ms"] = edge.keepaliveTimeoutMs;
  }
  return options;
}

/**
 * A Deno TCP connection as the Node stream grpc-js injects. Nagle is off (with it on, a unary
 * call waits ~40 ms for the delayed ACK). The peer's address is copied on, so `getPeer()` names
 * the connection (flow control counts per connection by it).
 */
function nodeSocketOf(conn: Deno.TcpConn): Duplex {
  conn.setNoDelay(true);
  // Deno's web streams and @types/node's differ only in typing (`value` on a done read).
  const pair = { readable: conn.readable, writable: conn.writable } as unknown as Parameters<
    typeof Duplex.fromWeb
  >[0];
  const socket = Duplex.fromWeb(pair);
  const remote = conn.remoteAddr;
  Object.assign(socket, {
    remoteAddress: remote.hostname,
    remotePort: remote.port,
    remoteFamily: remote.hostname.includes(":") ? "IPv6" : "IPv4",
  });
  return socket;
}

/** What `startGrpcEdge` serves on its port. */
export interface GrpcEdgeOptions {
  services: { definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation }[];
  edge: GrpcEdgeSettings;
  /** Transport security of the port (`src/security/tls.ts`); plain text when absent. */
  credentials?: grpc.ServerCredentials;
  log: Logger;
  /** Called on shutdown, after each session got its GOAWAY: ends the port's long-lived streams. */
  drainStreams?: () => void;
}

/**
 * Serves `services` on `addr` (host:port) behind the store's network edge: our accept loop with
 * its connection cap, grpc-js through the connection injector with the message size limits and
 * `edge`'s stream cap, idle timeout and keepalive, and the HTTP/2 guards. The store's port
 * (`startGrpcServer`) and the PD process's (`src/pd/server/main.ts`) are both this.
 */
export function startGrpcEdge(addr: string, options: GrpcEdgeOptions): GrpcServer {
  // A client's GOAWAY must not abort the process (Deno's HTTP/2, see goaway_guard.ts).
  installGoawayGuard();
  // Nor a peer's protocol error or early-closed stream (Deno's HTTP/2, see http2_peer_guard.ts).
  installHttp2PeerGuard();
  const { edge, log } = options;
  const server = new grpc.Server(serverOptions(edge));
  for (const service of options.services) server.addService(service.definition, service.handlers);
  const injector = server.createConnectionInjector(
    options.credentials ?? grpc.ServerCredentials.createInsecure(),
  );
  const { host, port: wantedPort } = splitAddr(addr);
  const listener = ConnectionListener.listen({ hostname: host, port: wantedPort }, {
    name: "grpc",
    maxConnections: edge.maxConnections,
    log,
    onConnection(conn, release) {
      const socket = nodeSocketOf(conn);
      socket.once("close", release);
      // A reset or a cancelled read is the peer's doing; an unheard 'error' would end the process.
      socket.on("error", (error) => log.debug("connection error", { error: String(error) }));
      injector.injectConnection(socket);
    },
  });
  return {
    port: listener.port,
    stats: () => ({
      grpc_connections: listener.open,
      grpc_connections_refused_total: listener.refused,
      grpc_accept_errors_total: listener.acceptErrors,
    }),
    async shutdown(timeoutMs) {
      // Not tryShutdown() first: measured on Deno 2.9.6, closing the injector's never-listening
      // http2 server drops its sessions at once ("Connection dropped" for calls in flight).
      // GOAWAY each session instead, let open calls finish, then close what is left.
      listener.close();
      injector.drain(timeoutMs);
      options.drainStreams?.();
      const deadline = Date.now() + timeoutMs;
      while (listener.open > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      server.forceShutdown();
    },
  };
}

/** Starts the store's gRPC server (`tikvpb.Tikv` and `deps.extraServices`) on `addr`. */
export function startGrpcServer(addr: string, deps: GrpcDependencies): Promise<GrpcServer> {
  const flow = new FlowRegistry();
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const command of COMMANDS) handlers[command.name] = unaryHandler(deps, command);
  const streams = new Set<BatchCommandsStream>();
  handlers.BatchCommands = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const stream = handleBatchCommands(call, { ...deps, flow });
    streams.add(stream);
    call.on("close", () => streams.delete(stream));
  };
  const edgeServer = startGrpcEdge(addr, {
    services: [{ definition: tikvServiceDefinition(), handlers }, ...(deps.extraServices ?? [])],
    edge: deps.edge ?? grpcEdgeSettings(defaultConfig().server),
    credentials: deps.credentials,
    log: deps.log,
    drainStreams: () => {
      for (const stream of streams) stream.drain();
    },
  });
  return Promise.resolve({
    port: edgeServer.port,
    stats: () => ({
      ...edgeServer.stats(),
      grpc_stream_pending_requests: flow.totalPendingRequests,
      grpc_stream_unsent_bytes: flow.totalUnsentBytes,
      grpc_stream_pauses_total: flow.pauses,
    }),
    shutdown: (timeoutMs) => edgeServer.shutdown(timeoutMs),
  });
}
