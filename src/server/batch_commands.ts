/**
 * BatchCommands, the bidirectional stream TiKV clients use for throughput. Each stream message
 * carries many sub-requests. The main thread frames the message without decoding the commands
 * (`wire.ts`), sends each region group's sub-requests to its worker in one message, and writes
 * answers back as they complete, each response message carrying the `request_ids` it answers.
 * Sub-requests run concurrently (their durable writes share fsyncs).
 *
 * Sub-requests Basalt does not serve (Coprocessor, Import, …) are answered with a response of
 * their own type whose `region_error` says so, or with `Empty` when the command is unknown, so
 * the stream never breaks over one sub-request; their bodies are not decoded (nothing here reads
 * them). A malformed stream message, or a malformed command inside one, ends the stream with
 * INVALID_ARGUMENT.
 *
 * Decoding client bytes: everything the main thread reads from a stream message — the framing,
 * the request ids, each sub-request's region, the `Empty` bodies — is read in one step,
 * `decodeMessage`, inside one guard, before anything is sent or answered; the commands
 * themselves are decoded by the workers, which refuse a malformed one. No client bytes reach a
 * decoder anywhere else on this thread.
 */
import * as grpc from "@grpc/grpc-js";
import { tikvpb } from "../../proto/mod.ts";
import { BATCH_COMMANDS_MAX_DELAY_MS, BATCH_COMMANDS_MAX_REQUESTS } from "../constants.ts";
import { grpcStatusOf, type StreamDependencies } from "./grpc_server.ts";
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

/**
 * Every member of the BatchCommands oneof (served or not) by field number, from the generated
 * code: a member is a field the static `Request` class declares on its prototype.
 */
const MEMBER_BY_FIELD: ReadonlyMap<number, string> = new Map(
  Object.keys(tikvpb.BatchCommandsRequest.Request.prototype).map((name) => [
    batchFieldOf(name),
    name,
  ]),
);
/** Members `BatchCommandsResponse.Response` has (a refusal must be of the request's own type). */
const RESPONSE_MEMBERS = new Set(Object.keys(tikvpb.BatchCommandsResponse.Response.prototype));

/**
 * The answer to a sub-request no worker serves: Empty (no member, or one this build does not
 * know), or its own type refusing it. The body is not read: the refusal does not depend on it.
 */
function unsupportedAnswer(field: number): Uint8Array {
  const name = MEMBER_BY_FIELD.get(field);
  if (name === undefined || !RESPONSE_MEMBERS.has(name)) return encodeResponse({ Empty: {} });
  const refusal = { regionError: { message: `${name} is not supported by Basalt` } };
  return encodeResponse({ [name]: refusal } as tikvpb.BatchCommandsResponse.Response.$Properties);
}

/** One stream message as read from the client's bytes (see `decodeMessage`). */
interface DecodedMessage {
  frame: BatchFrame;
  /** Sub-requests for the workers, per worker group. */
  groups: (BatchSubmission | undefined)[];
  /** The others: answered here, `Empty` after its delay. */
  unserved: { id: bigint; answer: Uint8Array; delayMs: number }[];
}

/**
 * Reads one stream message: frames it, sorts its sub-requests, and decodes the ids and the
 * `Empty` bodies of those answered here. Throws on malformed input (a `WireError`, or
 * protobufjs's error for an `Empty`); the caller turns that into INVALID_ARGUMENT.
 */
function decodeMessage(
  bytes: Uint8Array,
  workers: { count: number; groupOf(regionId: number): number },
): DecodedMessage {
  const frame = parseBatchRequest(bytes, BATCH_COMMANDS_MAX_REQUESTS);
  const count = subRequestCount(frame);
  if (count !== frame.idStarts.length) {
    throw new Error(`${count} requests but ${frame.idStarts.length} ids`);
  }
  const { groups, unserved: indexes } = route(frame, workers);
  const unserved = indexes.map((index) => {
    const field = frame.fields[index]!;
    const id = requestId(frame, index);
    if (field !== EMPTY_FIELD) return { id, answer: unsupportedAnswer(field), delayMs: 0 };
    const empty = tikvpb.BatchCommandsEmptyRequest.decode(subRequestBody(frame, index));
    const delayMs = Math.min(Number(empty.delayTime), BATCH_COMMANDS_MAX_DELAY_MS);
    return { id, answer: encodeResponse({ Empty: { testId: empty.testId } }), delayMs };
  });
  return { frame, groups, unserved };
}

/** Control of one served stream: `drain` ends it once its pending sub-requests are answered. */
export interface BatchCommandsStream {
  drain(): void;
}

/** Serves one BatchCommands stream until the client ends it or the server drains it. */
export function handleBatchCommands(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: StreamDependencies,
): BatchCommandsStream {
  let pending = 0;
  let draining = false;
  const open = () => !call.writableEnded && !call.destroyed;
  // Backpressure (flow_control.ts): the stream stops being read while it or its connection
  // holds too many unanswered sub-requests or unsent answer bytes.
  const flow = deps.flow.open(call.getPeer(), {
    pause: () => call.pause(),
    resume: () => call.resume(),
  });
  /** Timers of the delayed `Empty` answers still owed. */
  const delayed = new Set<ReturnType<typeof setTimeout>>();
  const began = (count: number) => {
    pending += count;
    flow.began(count);
  };
  const finished = (count: number) => {
    pending -= count;
    flow.finished(count);
  };
  /** Hands `bytes` to grpc-js, counted as unsent until its write callback fires. */
  const send = (bytes: Buffer) => {
    if (!open()) return;
    const length = bytes.length;
    flow.queued(length);
    call.write(bytes, () => flow.sent(length));
  };
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
    if (responses.length > 0 && open()) send(Buffer.from(encodeBatchResponse(responses, ids)));
  };

  call.on("data", (bytes: Buffer) => {
    let message: DecodedMessage;
    try {
      message = decodeMessage(bytes, deps.workers);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      fail(grpc.status.INVALID_ARGUMENT, `malformed BatchCommandsRequest: ${reason}`);
      return;
    }
    if (message.unserved.length > 0) answerUnserved(message.unserved);
    message.groups.forEach((submission, group) => {
      if (submission !== undefined) submit(group, submission);
    });
  });
  /** Answers the sub-requests no worker serves: Empty after its delay, the others now. */
  const answerUnserved = (unserved: DecodedMessage["unserved"]) => {
    const immediate: Uint8Array[] = [];
    const immediateIds: bigint[] = [];
    for (const { id, answer, delayMs } of unserved) {
      if (delayMs <= 0) {
        immediate.push(answer);
        immediateIds.push(id);
        continue;
      }
      // Counted like a worker's sub-request, so a stream of delayed Empty requests meets the
      // same caps; the timer goes with the stream.
      began(1);
      const timer = setTimeout(() => {
        delayed.delete(timer);
        finished(1);
        write([answer], [id]);
        endIfIdle();
      }, delayMs);
      delayed.add(timer);
    }
    write(immediate, immediateIds);
  };
  const submit = (group: number, submission: BatchSubmission) => {
    const startMs = performance.now();
    const count = submission.indexes.length;
    /** Per sub-request of the submission: answered yet (so a failure ends only the others). */
    const answered = new Uint8Array(count);
    let unanswered = count;
    began(count);
    deps.metrics.started(count);
    deps.workers.batch(group, submission, (part) => {
      const endMs = performance.now();
      const seconds = (endMs - startMs) / 1000;
      if (!part.ok) {
        for (let index = 0; index < count; index++) {
          if (answered[index] === 1) continue;
          deps.metrics.ended(BATCH_COMMANDS[submission.codes[index]!]!.name, part.code, seconds);
        }
        finished(unanswered);
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
      finished(part.count);
      unanswered -= part.count;
      send(Buffer.from(part.frame.buffer, part.frame.byteOffset, part.frame.length));
      endIfIdle();
    });
  };
  call.on("end", () => {
    draining = true;
    endIfIdle();
  });
  // A stream that ends or whose client leaves gives its counts back; answers still to come for
  // it are dropped by `send` (the call is no longer open).
  const closed = () => {
    for (const timer of delayed) clearTimeout(timer);
    delayed.clear();
    flow.close();
  };
  call.on("close", closed);
  call.on("cancelled", closed);
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
    // Field numbers are below 2^29 (`wire.ts`); past the table's end is "not served".
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
