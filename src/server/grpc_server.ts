/**
 * The gRPC server: service `tikvpb.Tikv`. The main thread only routes: a request's bytes go,
 * undecoded, to the region-group worker of the region named in its `Context`
 * (`region_workers.ts`), which decodes it (a malformed payload is the client's fault and gets
 * INVALID_ARGUMENT, where grpc-js would answer a throwing deserializer with INTERNAL), runs it
 * and returns the encoded response. Methods not listed here get grpc-js's UNIMPLEMENTED.
 */
import * as grpc from "@grpc/grpc-js";
import { bytesMethod } from "../util/grpc_bytes.ts";
import { GRPC_MAX_MESSAGE_BYTES } from "../constants.ts";
import { type BatchCommandsStream, handleBatchCommands } from "./batch_commands.ts";
import type { AnyCommand } from "./command.ts";
import { COMMANDS } from "./commands.ts";
import { installGoawayGuard } from "./goaway_guard.ts";
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
  /** More services on the same port (the standalone store's `pdpb.PD` face). */
  extraServices?: {
    definition: grpc.ServiceDefinition;
    handlers: grpc.UntypedServiceImplementation;
  }[];
}

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
}

/** Starts the gRPC server on `addr` (host:port). */
export async function startGrpcServer(addr: string, deps: GrpcDependencies): Promise<GrpcServer> {
  // A client's GOAWAY must not abort the process (Deno's HTTP/2, see goaway_guard.ts).
  installGoawayGuard();
  const server = new grpc.Server({
    "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
  });
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const command of COMMANDS) handlers[command.name] = unaryHandler(deps, command);
  const streams = new Set<BatchCommandsStream>();
  handlers.BatchCommands = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const stream = handleBatchCommands(call, deps);
    streams.add(stream);
    call.on("close", () => streams.delete(stream));
  };
  server.addService(tikvServiceDefinition(), handlers);
  for (const extra of deps.extraServices ?? []) server.addService(extra.definition, extra.handlers);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    });
  });
  return {
    port,
    async shutdown(timeoutMs) {
      const graceful = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      for (const stream of streams) stream.drain();
      const timer = new Promise<"timeout">((resolve) => {
        const id = setTimeout(() => resolve("timeout"), timeoutMs);
        graceful.then(() => clearTimeout(id));
      });
      if (await Promise.race([graceful, timer]) === "timeout") server.forceShutdown();
    },
  };
}
