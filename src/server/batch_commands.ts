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
import { type GrpcDependencies, grpcStatusOf } from "./grpc_server.ts";
import type { BatchSubmission } from "./region_workers.ts";
import {
  batchFieldOf,
  type BatchFrame,
  contextRegionId,
  encodeBatchResponse,
  parseBatchRequest,
  requestId,
  subRequestBody,
  subRequestCount,
} from "./wire.ts";
import { BATCH_COMMANDS, OUTCOMES } from "./worker_protocol.ts";

/** Command codes (see `BATCH_COMMANDS`) by BatchCommands field number; -1 where not served. */
const CODE_BY_FIELD: readonly number[] = (() => {
  const codes: number[] = [];
  BATCH_COMMANDS.forEach((command, code) => codes[batchFieldOf(command.batchName!)] = code);
  return Array.from({ length: codes.length }, (_, field) => codes[field] ?? -1);
})();
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
    let frame: BatchFrame;
    try {
      frame = parseBatchRequest(bytes);
      const count = subRequestCount(frame);
      if (count !== frame.idStarts.length) {
        throw new Error(`${count} requests but ${frame.idStarts.length} ids`);
      }
      if (count > BATCH_COMMANDS_MAX_REQUESTS) {
        throw new Error(`more than ${BATCH_COMMANDS_MAX_REQUESTS} requests in one message`);
      }
    } catch (error) {
      fail(
        grpc.status.INVALID_ARGUMENT,
        `malformed BatchCommandsRequest: ${(error as Error).message}`,
      );
      return;
    }
    const submissions = route(frame, deps.workers);
    if (submissions.unserved.length > 0) answerUnserved(frame, submissions.unserved);
    submissions.groups.forEach((submission, group) => {
      if (submission !== undefined) submit(group, submission);
    });
  });
  /** Answers the sub-requests no worker serves: Empty after its delay, others refused now. */
  const answerUnserved = (frame: BatchFrame, indexes: number[]) => {
    const immediate: Uint8Array[] = [];
    const immediateIds: bigint[] = [];
    for (const index of indexes) {
      const field = frame.fields[index]!;
      const body = subRequestBody(frame, index);
      const id = requestId(frame, index);
      if (field === EMPTY_FIELD) {
        pending++;
        answerEmpty(body).then((response) => {
          pending--;
          write([response], [id]);
          endIfIdle();
        }, (error: unknown) => fail(grpc.status.INVALID_ARGUMENT, `malformed Empty: ${error}`));
      } else {
        immediate.push(unsupportedAnswer(body, field));
        immediateIds.push(id);
      }
    }
    write(immediate, immediateIds);
  };
  const submit = (group: number, submission: BatchSubmission) => {
    const startMs = performance.now();
    const count = submission.indexes.length;
    /** Per sub-request of the submission: answered yet (so a failure ends only the others). */
    const answered = new Uint8Array(count);
    let unanswered = count;
    pending += count;
    deps.metrics.started(count);
    deps.workers.batch(group, submission, (part) => {
      const endMs = performance.now();
      const seconds = (endMs - startMs) / 1000;
      if (!part.ok) {
        for (let index = 0; index < count; index++) {
          if (answered[index] === 1) continue;
          deps.metrics.ended(BATCH_COMMANDS[submission.codes[index]!]!.name, part.code, seconds);
        }
        pending -= unanswered;
        unanswered = 0;
        if (part.code === "internal") {
          deps.log.error("BatchCommands failed", { error: part.details });
        }
        fail(grpcStatusOf(part.code), part.details);
        return;
      }
      for (let n = 0; n < part.count; n++) {
        const index = part.layout[part.at + 2 * n]!;
        answered[index] = 1;
        const rpc = BATCH_COMMANDS[submission.codes[index]!]!.name;
        deps.metrics.ended(rpc, OUTCOMES[part.layout[part.at + 2 * n + 1]!]!, seconds);
      }
      if (endMs - startMs > deps.slowRequestThresholdMs) {
        deps.log.warn("slow request", {
          rpc: "BatchCommands",
          requests: part.count,
          ms: Math.round(endMs - startMs),
        });
      }
      pending -= part.count;
      unanswered -= part.count;
      if (open()) {
        call.write(Buffer.from(part.frame.buffer, part.frame.byteOffset, part.frame.length));
      }
      endIfIdle();
    });
  };
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

/**
 * Sorts the sub-requests of `frame`: those a worker serves, per worker group (by the region
 * in their context), and the rest.
 */
function route(
  frame: BatchFrame,
  workers: { count: number; groupOf(regionId: number): number },
): { groups: (BatchSubmission | undefined)[]; unserved: number[] } {
  const groups: (BatchSubmission | undefined)[] = new Array(workers.count);
  const unserved: number[] = [];
  const count = subRequestCount(frame);
  for (let index = 0; index < count; index++) {
    const code = CODE_BY_FIELD[frame.fields[index]!] ?? -1;
    if (code < 0) {
      unserved.push(index);
      continue;
    }
    const regionId = contextRegionId(frame.bytes, frame.bodyStarts[index], frame.bodyEnds[index]);
    const group = workers.groupOf(regionId);
    const submission = groups[group] ??= { frame, indexes: [], codes: [] };
    submission.indexes.push(index);
    submission.codes.push(code);
  }
  return { groups, unserved };
}
