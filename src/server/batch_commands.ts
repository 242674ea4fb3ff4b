/**
 * BatchCommands, the bidirectional stream TiKV clients use for throughput. Each stream message
 * carries many sub-requests. The main thread frames the message without decoding the commands
 * (`wire.ts`), sends each region group's sub-requests to its worker in one message, and writes
 * answers back as they complete, each response message carrying the `request_ids` it answers.
 * Sub-requests run concurrently (their durable writes share fsyncs).
 *
 * Sub-requests Basalt does not serve (Coprocessor, Import, …) are answered with a response of
 * their own type whose `region_error` says so, or with `Empty` when the command is unknown, so
 * the stream never breaks over one sub-request. A malformed stream message, or a malformed
 * command inside one, ends the stream with INVALID_ARGUMENT.
 */
import * as grpc from "@grpc/grpc-js";
import { tikvpb } from "../../proto/mod.ts";
import { BATCH_COMMANDS_MAX_DELAY_MS, BATCH_COMMANDS_MAX_REQUESTS } from "../constants.ts";
import type { AnyCommand } from "./command.ts";
import { COMMANDS_BY_BATCH_NAME } from "./commands.ts";
import { type GrpcDependencies, grpcStatusOf } from "./grpc_server.ts";
import type { Outcome } from "./metrics.ts";
import { batchFieldOf, contextRegionId, encodeBatchResponse, parseBatchRequest } from "./wire.ts";

/** Served commands by their BatchCommands field number. */
const SERVED_BY_FIELD: ReadonlyMap<number, AnyCommand> = new Map(
  [...COMMANDS_BY_BATCH_NAME].map(([name, command]) => [batchFieldOf(name), command]),
);
const EMPTY_FIELD = batchFieldOf("Empty");

const encodeResponse = (response: tikvpb.BatchCommandsResponse.Response.$Properties) =>
  tikvpb.BatchCommandsResponse.Response.encode(response).finish();

/** The answer to a sub-request no worker serves: Empty, or its own type refusing it. */
function unsupportedAnswer(body: Uint8Array, field: number): Uint8Array {
  // The whole Request is rebuilt to learn the member's name: a rare path.
  const name = field === 0 ? undefined : tikvpb.BatchCommandsRequest.Request.decode(
    encodeBatchRequestMember(field, body),
  ).cmd;
  if (name === undefined) return encodeResponse({ Empty: {} });
  const refusal = { regionError: { message: `${name} is not supported by Basalt` } };
  try {
    return encodeResponse({ [name]: refusal } as tikvpb.BatchCommandsResponse.Response.$Properties);
  } catch {
    return encodeResponse({ Empty: {} });
  }
}

/** A `BatchCommandsRequest.Request` holding `body` as member `field`. */
function encodeBatchRequestMember(field: number, body: Uint8Array): Uint8Array {
  const writer = tikvpb.BatchCommandsRequest.Request.encode({}); // an empty Writer
  writer.uint32(field << 3 | 2).bytes(body);
  return writer.finish();
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
  const open = () => !call.writableEnded && !call.destroyed;
  const endIfIdle = () => {
    if (draining && pending === 0 && open()) call.end();
  };
  const fail = (code: grpc.status, details: string) => {
    // grpc-js sends the status for an emitted error; `destroy(error)` would send none.
    if (!call.destroyed && !call.writableEnded) {
      call.emit("error", Object.assign(new Error(details), { code, details }));
    }
  };
  const write = (responses: Uint8Array[], ids: bigint[]) => {
    if (responses.length > 0 && open()) {
      call.write(Buffer.from(encodeBatchResponse(responses, ids)));
    }
  };

  call.on("data", (bytes: Buffer) => {
    let frame;
    try {
      frame = parseBatchRequest(bytes);
      if (frame.requests.length !== frame.ids.length) {
        throw new Error(`${frame.requests.length} requests but ${frame.ids.length} ids`);
      }
      if (frame.requests.length > BATCH_COMMANDS_MAX_REQUESTS) {
        throw new Error(`more than ${BATCH_COMMANDS_MAX_REQUESTS} requests in one message`);
      }
    } catch (error) {
      fail(
        grpc.status.INVALID_ARGUMENT,
        `malformed BatchCommandsRequest: ${(error as Error).message}`,
      );
      return;
    }
    const immediate: Uint8Array[] = [];
    const immediateIds: bigint[] = [];
    /** Per worker group: the sub-requests' indexes into the frame. */
    const groups = new Map<number, number[]>();
    frame.requests.forEach((request, index) => {
      const command = SERVED_BY_FIELD.get(request.field);
      if (command !== undefined) {
        const group = deps.workers.groupOf(contextRegionId(request.body));
        const members = groups.get(group);
        if (members === undefined) groups.set(group, [index]);
        else members.push(index);
      } else if (request.field === EMPTY_FIELD) {
        pending++;
        answerEmpty(request.body).then((response) => {
          pending--;
          write([response], [frame.ids[index]!]);
          endIfIdle();
        }, (error: unknown) => fail(grpc.status.INVALID_ARGUMENT, `malformed Empty: ${error}`));
      } else {
        immediate.push(unsupportedAnswer(request.body, request.field));
        immediateIds.push(frame.ids[index]!);
      }
    });
    write(immediate, immediateIds);
    for (const [group, indexes] of groups) {
      const names = indexes.map((i) => SERVED_BY_FIELD.get(frame.requests[i]!.field)!.name);
      const batchNames = indexes.map((i) =>
        SERVED_BY_FIELD.get(frame.requests[i]!.field)!.batchName!
      );
      const startMs = performance.now();
      const ends: (((outcome: Outcome, endMs: number) => void) | null)[] = names.map((name) =>
        deps.metrics.begin(name, startMs)
      );
      let unanswered = indexes.length;
      pending += unanswered;
      deps.workers.batch(
        group,
        batchNames,
        indexes.map((i) => frame.requests[i]!.body),
        (part) => {
          const endMs = performance.now();
          if (!part.ok) {
            ends.forEach((end) => end?.(part.code, endMs));
            ends.fill(null);
            pending -= unanswered;
            unanswered = 0;
            if (part.code === "internal") {
              deps.log.error("BatchCommands failed", { error: part.details });
            }
            fail(grpcStatusOf(part.code), part.details);
            return;
          }
          const ids = part.indexes.map((i) => frame.ids[indexes[i]!]!);
          part.indexes.forEach((i, n) => {
            ends[i]?.(part.outcomes[n]!, endMs);
            ends[i] = null;
            if (endMs - startMs > deps.slowRequestThresholdMs) {
              deps.log.warn("slow request", { rpc: names[i], ms: Math.round(endMs - startMs) });
            }
          });
          pending -= part.indexes.length;
          unanswered -= part.indexes.length;
          write(part.responses, ids);
          endIfIdle();
        },
      );
    }
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

/** Answers an `Empty` sub-request after its (bounded) delay. */
async function answerEmpty(body: Uint8Array): Promise<Uint8Array> {
  const empty = tikvpb.BatchCommandsEmptyRequest.decode(body);
  const delayMs = Math.min(Number(empty.delayTime), BATCH_COMMANDS_MAX_DELAY_MS);
  if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  return encodeResponse({ Empty: { testId: empty.testId } });
}
