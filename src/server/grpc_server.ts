/**
 * The gRPC server: service `tikvpb.Tikv` built from our static protobuf codecs.
 *
 * Requests arrive as raw bytes and are decoded in the handler (grpc-js would answer a throwing
 * deserializer with INTERNAL; a malformed payload is the client's fault, so it gets
 * INVALID_ARGUMENT). Methods not listed here get grpc-js's UNIMPLEMENTED.
 */
import * as grpc from "@grpc/grpc-js";
import { GRPC_MAX_MESSAGE_BYTES } from "../constants.ts";
import { type BatchCommandsStream, handleBatchCommands } from "./batch_commands.ts";
import type { Logger } from "./log.ts";
import { outcomeOf, type RequestMetrics } from "./metrics.ts";
import { type AnyRawCommand, RAW_COMMANDS, type RawServices, runRawCommand } from "./raw/mod.ts";

/** What the gRPC handlers need. */
export interface GrpcDependencies {
  services: RawServices;
  metrics: RequestMetrics;
  log: Logger;
  slowRequestThresholdMs: number;
}

const identity = (bytes: Buffer) => bytes;

function unaryHandler(
  deps: GrpcDependencies,
  command: AnyRawCommand,
): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const startMs = performance.now();
    const end = deps.metrics.begin(command.name, startMs);
    let request: { context?: unknown };
    try {
      request = command.requestCodec.decode(call.request);
    } catch (error) {
      end("invalid_argument", performance.now());
      callback({
        code: grpc.status.INVALID_ARGUMENT,
        details: `malformed ${command.name} request: ${(error as Error).message}`,
      });
      return;
    }
    runRawCommand(deps.services, command, request).then((response) => {
      const endMs = performance.now();
      end(outcomeOf(response), endMs);
      if (endMs - startMs > deps.slowRequestThresholdMs) {
        deps.log.warn("slow request", { rpc: command.name, ms: Math.round(endMs - startMs) });
      }
      callback(null, Buffer.from(command.responseCodec.encode(response).finish()));
    }, (error: unknown) => {
      end("internal", performance.now());
      deps.log.error("request failed", { rpc: command.name, error: String(error) });
      callback({ code: grpc.status.INTERNAL, details: `${command.name}: ${String(error)}` });
    });
  };
}

/** The `tikvpb.Tikv` service definition for the raw API and BatchCommands. */
export function tikvServiceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const command of RAW_COMMANDS) {
    definition[command.name] = {
      path: `/tikvpb.Tikv/${command.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
  }
  definition.BatchCommands = {
    path: "/tikvpb.Tikv/BatchCommands",
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
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
  const server = new grpc.Server({
    "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
  });
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const command of RAW_COMMANDS) handlers[command.name] = unaryHandler(deps, command);
  const streams = new Set<BatchCommandsStream>();
  handlers.BatchCommands = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const stream = handleBatchCommands(call, deps);
    streams.add(stream);
    call.on("close", () => streams.delete(stream));
  };
  server.addService(tikvServiceDefinition(), handlers);
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
