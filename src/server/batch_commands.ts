/**
 * BatchCommands, the bidirectional stream TiKV clients use for throughput. Each stream message
 * carries many sub-requests; they run concurrently (their durable writes share fsyncs), and the
 * answers go back in one message with the same `request_ids`.
 *
 * Unsupported sub-requests (transactional commands, Coprocessor) are answered with a response
 * of their own type whose `region_error` says so, or with `Empty` when the command could not be
 * decoded, so the stream never breaks over one sub-request. A malformed stream message ends the
 * stream with INVALID_ARGUMENT.
 */
import * as grpc from "@grpc/grpc-js";
import { tikvpb } from "../../proto/mod.ts";
import { BATCH_COMMANDS_MAX_DELAY_MS, BATCH_COMMANDS_MAX_REQUESTS } from "../constants.ts";
import type { GrpcDependencies } from "./grpc_server.ts";
import { outcomeOf } from "./metrics.ts";
import { RAW_COMMANDS_BY_NAME, runRawCommand } from "./raw/mod.ts";

type Response = tikvpb.BatchCommandsResponse.Response.$Properties;

/** Answers one sub-request. */
async function answer(
  deps: GrpcDependencies,
  request: tikvpb.BatchCommandsRequest.Request,
): Promise<Response> {
  const name = request.cmd;
  if (name === "Empty") {
    const empty = request.Empty!;
    const delayMs = Math.min(Number(empty.delayTime), BATCH_COMMANDS_MAX_DELAY_MS);
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return { Empty: { testId: empty.testId } };
  }
  const command = name === undefined ? undefined : RAW_COMMANDS_BY_NAME.get(name);
  if (command === undefined) {
    if (name === undefined) return { Empty: {} };
    return { [name]: { regionError: { message: `${name} is not supported by Basalt yet` } } };
  }
  const startMs = performance.now();
  const end = deps.metrics.begin(command.name, startMs);
  try {
    const sub = (request as unknown as Record<string, { context?: unknown }>)[command.name]!;
    const response = await runRawCommand(deps.services, command, sub);
    end(outcomeOf(response), performance.now());
    return { [command.name]: response };
  } catch (error) {
    end("internal", performance.now());
    throw error;
  }
}

/** Control of one served stream: `drain` ends it once its pending sub-requests are answered. */
export interface BatchCommandsStream {
  drain(): void;
}

/** Serves one BatchCommands stream until the client ends it or the server drains it. */
export function handleBatchCommands(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: GrpcDependencies,
): BatchCommandsStream {
  let pending = 0;
  let draining = false;
  const endIfIdle = () => {
    if (draining && pending === 0 && !call.writableEnded) call.end();
  };
  call.on("data", (bytes: Buffer) => {
    let batch: tikvpb.BatchCommandsRequest;
    try {
      batch = tikvpb.BatchCommandsRequest.decode(bytes);
      if (batch.requests.length !== batch.requestIds.length) {
        throw new Error(`${batch.requests.length} requests but ${batch.requestIds.length} ids`);
      }
      if (batch.requests.length > BATCH_COMMANDS_MAX_REQUESTS) {
        throw new Error(`more than ${BATCH_COMMANDS_MAX_REQUESTS} requests in one message`);
      }
    } catch (error) {
      const details = `malformed BatchCommandsRequest: ${(error as Error).message}`;
      call.destroy(
        Object.assign(new Error(details), { code: grpc.status.INVALID_ARGUMENT, details }),
      );
      return;
    }
    pending++;
    Promise.all(batch.requests.map((request) => answer(deps, request))).finally(() => {
      pending--;
    }).then((responses) => {
      const message = tikvpb.BatchCommandsResponse.encode({
        responses,
        requestIds: batch.requestIds,
      });
      if (!call.writableEnded && !call.destroyed) call.write(Buffer.from(message.finish()));
      endIfIdle();
    }, (error: unknown) => {
      deps.log.error("BatchCommands failed", { error: String(error) });
      const details = `BatchCommands: ${String(error)}`;
      call.destroy(Object.assign(new Error(details), { code: grpc.status.INTERNAL, details }));
    });
  });
  call.on("end", () => {
    draining = true;
    endIfIdle();
  });
  call.on(
    "error",
    (error) => deps.log.debug("BatchCommands stream error", { error: String(error) }),
  );
  return {
    drain() {
      draining = true;
      endIfIdle();
    },
  };
}
