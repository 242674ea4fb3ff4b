/**
 * The request fuzzer: sends a running store valid requests and mutated ones (see `mutate.ts`) on
 * every face it has — each unary `tikvpb.Tikv` RPC, BatchCommands streams with every kind of
 * sub-request (served, not served, `Empty`, unknown members), the `pdpb.PD` RPCs and the Tso
 * stream, the status server over HTTP, and raw bytes at both sockets — and checks what TiKV's
 * clients rely on:
 *
 * 1. the process never exits (the caller's `exited` resolves if it does; the run stops);
 * 2. every request is answered before its deadline (a hang is a failure, not a slow answer);
 * 3. no answer is UNAVAILABLE (the connection lost), nor, with `strict`, INTERNAL (a malformed
 *    request is INVALID_ARGUMENT or a per-sub-request error; INTERNAL means a handler threw on
 *    what the client sent: reported with its details either way, see `FuzzReport.internal`);
 * 4. no region worker died (its log line);
 * 5. the canary keys written before the run read back intact after it (`canaries.ts`).
 *
 * The requests are a pure function of the seed: request `n` of a seed is the same bytes in
 * every run, whatever the timing (answers may differ with timing). Shared by the short test
 * (`tests/e2e/fuzz_test.ts`) and the long run (`deno task fuzz`, `scripts/fuzz.ts`).
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import type protobuf from "protobufjs";
import { pdpb } from "../../proto/mod.ts";
import { BATCH_COMMANDS_MAX_DELAY_MS } from "../../src/constants.ts";
import { COMMANDS, COMMANDS_BY_BATCH_NAME, COMMANDS_BY_NAME } from "../../src/server/commands.ts";
import { pdServiceDefinition } from "../../src/server/pd/mod.ts";
import { parseBatchRequest, subRequestBody, subRequestCount } from "../../src/server/wire.ts";
import { composeTs } from "../../src/txn_types/timestamp.ts";
import { toHex, utf8 } from "../../src/util/bytes.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { checkCanaries, reachesCanaries, writeCanaries } from "./canaries.ts";
import { loadSchema, type MessageContext, randomMessageBytes, type Schema } from "./messages.ts";
import { lengthDelimited, mutate, tag, varint } from "./mutate.ts";

/** Longest a unary request may take to be answered (lock waits are capped at 1 s). */
export const UNARY_DEADLINE_MS = 10_000;
/** Longest a stream may stay open after the client ends its side (`Empty` may delay 10 s). */
export const STREAM_DEADLINE_MS = BATCH_COMMANDS_MAX_DELAY_MS + 5_000;
/** How long a raw socket is read before it is closed (no answer is owed to garbage). */
const SOCKET_READ_MS = 200;
/** Requests in flight at once, by default. */
const DEFAULT_CONCURRENCY = 8;
/** Share of requests sent as generated, unmutated. */
const VALID_SHARE = 0.15;
/** Keys of each key space the requests draw from (canaries are elsewhere: `canaries.ts`). */
const KEY_POOL = 24;
/** At most this many failures are kept in a report (the first ones). */
const MAX_FAILURES_KEPT = 20;
/** What the raw HTTP/2 bytes call: commands that write nothing. */
const SOCKET_METHODS = ["RawGet", "RawBatchGet", "RawScan", "KvGet", "KvScan", "RawGetKeyTTL"];
/** Batch names whose command deletes a range of keys (see `reachesCanaries`). */
const RANGE_DELETES = new Set(["RawDeleteRange", "KvDeleteRange", "DeleteRange"]);

/** Where the store listens. */
export interface FuzzTarget {
  grpcAddr: string;
  statusAddr: string;
}

/** Options of `runFuzz`. */
export interface FuzzOptions {
  seed: number;
  /** Requests are started until this much time has passed; those in flight are then awaited. */
  durationMs: number;
  concurrency?: number;
  /** Resolves with a description if the store process exits: the run stops and fails. */
  exited: Promise<string>;
  /** The store's log, read after the run: a worker death in it is a failure. */
  readLog?: () => Promise<string>;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Log every request before it is sent (to find the one a crash followed). */
  verbose?: boolean;
  /**
   * Read the canaries back after every this many requests too (0: only at the end), to find
   * the request that changed one (run with concurrency 1 for an exact answer).
   */
  checkEvery?: number;
  /** Count INTERNAL answers as failures (by default they are reported, not failed). */
  strict?: boolean;
}

/** What a run did and found. */
export interface FuzzReport {
  seed: number;
  /** Requests sent, by kind (`tikv/RawGet`, `batch`, `pd/GetRegion`, `status/GET`, …). */
  sent: Record<string, number>;
  /** Answers by gRPC status name, `http <code>`, or `socket …`. */
  answers: Record<string, number>;
  /** Requests generated but not sent because they could have touched a canary. */
  skipped: number;
  failures: string[];
  /** Distinct details of INTERNAL and UNKNOWN answers, with counts (keys and numbers elided). */
  internal: Record<string, number>;
}

/** One request, ready to send. */
interface FuzzCase {
  index: number;
  kind: string;
  bytes: Uint8Array[];
  send(): Promise<string>;
}

interface Environment {
  schema: Schema;
  target: FuzzTarget;
  client: grpc.Client;
  rng: SeededRandom;
  rawKeys: Uint8Array[];
  txnKeys: Uint8Array[];
  baseTs: bigint;
  clusterId: bigint;
  servedTikv: string[];
  unservedTikv: string[];
  servedPd: string[];
  unservedPd: string[];
  /** BatchCommands members: [field number, name, request type]. */
  members: { served: Member[]; unserved: Member[] };
  /** Where INTERNAL answers' details are counted. */
  internal: Record<string, number>;
}

interface Member {
  field: number;
  name: string;
  type: protobuf.Type;
}

function messageContext(env: Environment, keySpace: "raw" | "txn"): MessageContext {
  return {
    rng: env.rng,
    keys: keySpace === "raw" ? env.rawKeys : env.txnKeys,
    baseTs: env.baseTs,
    clusterId: env.clusterId,
  };
}

function maybeMutate(env: Environment, bytes: Uint8Array): Uint8Array {
  return env.rng.chance(VALID_SHARE) ? bytes : mutate(env.rng, bytes);
}

const identity = (bytes: Uint8Array) => Buffer.from(bytes);
const asBytes = (buffer: Buffer) => new Uint8Array(buffer);

/** The answer's name; INTERNAL and UNKNOWN answers' details are counted in `env.internal`. */
function answerOf(env: Environment, code: number, details: string | undefined): string {
  if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN) {
    const what = `${grpc.status[code]}: ${
      (details ?? "").replace(/"[^"]*"|0x[0-9a-f]+/g, "K").replace(/\d+/g, "N").slice(0, 200)
    }`;
    env.internal[what] = (env.internal[what] ?? 0) + 1;
  }
  return grpc.status[code] ?? `status ${code}`;
}

function unary(env: Environment, path: string, bytes: Uint8Array): Promise<string> {
  return new Promise((resolve) => {
    env.client.makeUnaryRequest<Uint8Array, Uint8Array>(
      path,
      identity,
      asBytes,
      bytes,
      { deadline: Date.now() + UNARY_DEADLINE_MS },
      (error) => resolve(answerOf(env, error?.code ?? grpc.status.OK, error?.details)),
    );
  });
}

function stream(env: Environment, path: string, messages: Uint8Array[]): Promise<string> {
  return new Promise((resolve) => {
    const call = env.client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      path,
      identity,
      asBytes,
      { deadline: Date.now() + STREAM_DEADLINE_MS },
    );
    call.on("data", () => {});
    call.on("error", () => {});
    call.on(
      "status",
      (status: grpc.StatusObject) => resolve(answerOf(env, status.code, status.details)),
    );
    for (const message of messages) call.write(message);
    call.end();
  });
}

/** Whether the store, decoding a BatchCommands message as it does, could reach a canary. */
function batchReachesCanaries(env: Environment, bytes: Uint8Array): boolean {
  let frame;
  try {
    frame = parseBatchRequest(bytes);
  } catch {
    return false; // refused whole
  }
  for (let i = 0; i < subRequestCount(frame); i++) {
    const member = env.members.served.find((candidate) => candidate.field === frame.fields[i]);
    if (member === undefined) continue;
    const command = COMMANDS_BY_BATCH_NAME.get(member.name)!;
    let decoded: unknown;
    try {
      decoded = command.requestCodec.decode(subRequestBody(frame, i));
    } catch {
      continue;
    }
    if (reachesCanaries(decoded, RANGE_DELETES.has(member.name))) return true;
  }
  return false;
}

function tikvCase(env: Environment, index: number): FuzzCase | null {
  const name = env.rng.pick(env.servedTikv);
  const type = env.schema.tikv.methods[name]!.resolvedRequestType!;
  const valid = randomMessageBytes(
    messageContext(env, name.startsWith("Raw") ? "raw" : "txn"),
    type,
  );
  const bytes = maybeMutate(env, valid);
  try {
    const decoded = COMMANDS_BY_NAME.get(name)!.requestCodec.decode(bytes);
    if (reachesCanaries(decoded, RANGE_DELETES.has(name))) return null;
  } catch { /* refused by the store's decoder too */ }
  return {
    index,
    kind: `tikv/${name}`,
    bytes: [bytes],
    send: () => unary(env, `/tikvpb.Tikv/${name}`, bytes),
  };
}

function unservedTikvCase(env: Environment, index: number): FuzzCase {
  const name = env.rng.pick(env.unservedTikv);
  const method = env.schema.tikv.methods[name]!;
  const valid = randomMessageBytes(messageContext(env, "txn"), method.resolvedRequestType!);
  const bytes = maybeMutate(env, valid);
  const path = `/tikvpb.Tikv/${name}`;
  return {
    index,
    kind: `tikv-unserved/${name}`,
    bytes: [bytes],
    send: () => method.requestStream ? stream(env, path, [bytes]) : unary(env, path, bytes),
  };
}

/** One sub-request: a served or unserved member, Empty, or a member no schema has. */
function subRequest(env: Environment): number[] {
  const { rng } = env;
  const roll = rng.next();
  if (roll < 0.15) {
    // Field numbers past the oneof, including 0 and past protobuf's 2^29-1.
    const field = rng.pick([
      0,
      41,
      100,
      254,
      256,
      2 ** 29 - 1,
      2 ** 29,
      2 ** 32 + 1,
      rng.int(2 ** 29),
    ]);
    return lengthDelimited(field, rng.bytes(rng.int(10)));
  }
  const members = roll < 0.6 ? env.members.served : env.members.unserved;
  const member = rng.pick(members);
  const keySpace = member.name.startsWith("Raw") ? "raw" : "txn";
  return lengthDelimited(
    member.field,
    randomMessageBytes(messageContext(env, keySpace), member.type),
  );
}

function batchMessage(env: Environment): Uint8Array {
  const { rng } = env;
  const count = 1 + rng.int(8);
  const out: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(...lengthDelimited(1, subRequest(env)));
    ids.push(...varint(rng.chance(0.9) ? i + 1 : rng.int(2 ** 31)));
  }
  out.push(...lengthDelimited(2, ids));
  if (rng.chance(0.2)) out.push(...tag(3, 0), ...varint(rng.int(2 ** 40)));
  return maybeMutate(env, new Uint8Array(out));
}

function batchCase(env: Environment, index: number): FuzzCase | null {
  const messages = Array.from({ length: 1 + env.rng.int(2) }, () => batchMessage(env));
  if (messages.some((bytes) => batchReachesCanaries(env, bytes))) return null;
  return {
    index,
    kind: "batch",
    bytes: messages,
    send: () => stream(env, "/tikvpb.Tikv/BatchCommands", messages),
  };
}

function pdCase(env: Environment, index: number): FuzzCase {
  const served = env.rng.chance(0.9);
  const name = env.rng.pick(served ? env.servedPd : env.unservedPd);
  const method = env.schema.pd.methods[name]!;
  const bytes = maybeMutate(
    env,
    randomMessageBytes(messageContext(env, "txn"), method.resolvedRequestType!),
  );
  const path = `/pdpb.PD/${name}`;
  return {
    index,
    kind: `pd${served ? "" : "-unserved"}/${name}`,
    bytes: [bytes],
    send: () => method.requestStream ? stream(env, path, [bytes]) : unary(env, path, bytes),
  };
}

function tsoCase(env: Environment, index: number): FuzzCase {
  const messages = Array.from(
    { length: 1 + env.rng.int(3) },
    () =>
      maybeMutate(
        env,
        pdpb.TsoRequest.encode({
          header: { clusterId: env.rng.chance(0.9) ? env.clusterId : BigInt(env.rng.int(100)) },
          count: env.rng.chance(0.1) ? env.rng.pick([0, 2 ** 31, 2 ** 32 - 1]) : 1 + env.rng.int(8),
        }).finish(),
      ),
  );
  return {
    index,
    kind: "pd/Tso",
    bytes: messages,
    send: () => stream(env, "/pdpb.PD/Tso", messages),
  };
}

const STATUS_PATHS = [
  "/health",
  "/metrics",
  "/config",
  "/regions",
  "/",
  "/nope",
  "//",
  "/%zz",
  "/metrics?x=%00",
];
const HTTP_METHODS = [
  "GET",
  "GET",
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "BREW",
];

function statusCase(env: Environment, index: number): FuzzCase {
  const { rng } = env;
  const method = rng.pick(HTTP_METHODS);
  const path = rng.chance(0.1) ? `/${"a".repeat(rng.int(20_000))}` : rng.pick(STATUS_PATHS);
  const body = method === "GET" || method === "HEAD"
    ? undefined
    : new Uint8Array(rng.bytes(rng.int(64)));
  return {
    index,
    kind: `status/${method}`,
    bytes: [utf8(`${method} ${path}`)],
    send: async () => {
      const response = await fetch(`http://${env.target.statusAddr}${path}`, {
        method,
        body,
        signal: AbortSignal.timeout(UNARY_DEADLINE_MS),
      });
      await response.arrayBuffer();
      return `http ${response.status}`;
    },
  };
}

/** An HTTP/2 frame (RFC 9113 §4.1). */
export function frame(type: number, flags: number, streamId: number, payload: number[]): number[] {
  const length = payload.length;
  return [
    length >> 16,
    (length >> 8) & 0xff,
    length & 0xff,
    type,
    flags,
    ...[24, 16, 8, 0].map((shift) => (streamId >>> shift) & 0xff),
    ...payload,
  ];
}

/** HPACK literal header fields without indexing, new names (RFC 7541 §6.2.2), short strings. */
export function literalHeaders(headers: [string, string][]): number[] {
  return headers.flatMap((
    [name, value],
  ) => [0x00, name.length, ...utf8(name), value.length, ...utf8(value)]);
}

/** A gRPC call over raw HTTP/2 (preface, SETTINGS, HEADERS, DATA), then mutated or extended. */
function http2Bytes(env: Environment): Uint8Array {
  const { rng } = env;
  // Read-only methods: raw bytes bypass the canary filter (`reachesCanaries`).
  const name = rng.pick(SOCKET_METHODS);
  const message = randomMessageBytes(
    messageContext(env, "raw"),
    env.schema.tikv.methods[name]!.resolvedRequestType!,
  );
  const declared = rng.chance(0.2) ? rng.pick([0xffff_ffff, 64 * 1024 * 1024 + 1]) : message.length;
  const grpcFrame = [
    rng.chance(0.1) ? 1 : 0,
    ...[24, 16, 8, 0].map((shift) => (declared >>> shift) & 0xff),
    ...message,
  ];
  const extras = [
    frame(7, 0, 0, [0, 0, 0, 1, 0, 0, 0, rng.int(14)]), // GOAWAY
    frame(3, 0, 1, [0, 0, 0, 8]), // RST_STREAM CANCEL
    frame(6, 0, 0, [...rng.bytes(8)]), // PING
    frame(8, 0, rng.int(3), [0, 0, 0, 0]), // WINDOW_UPDATE of 0
    frame(4, 0, 0, [0, 4, 0x80, 0, 0, 0]), // SETTINGS_INITIAL_WINDOW_SIZE 2^31
    frame(9, 4, 3, [...rng.bytes(6)]), // CONTINUATION without HEADERS
    frame(0x20, 0, 5, [...rng.bytes(4)]), // unknown type
    frame(1, 4, 2, [...rng.bytes(8)]), // HEADERS with garbage HPACK on an even stream
  ];
  const conversation = [
    ...utf8("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ...frame(4, 0, 0, []),
    ...frame(
      1,
      4,
      1,
      literalHeaders([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", `/tikvpb.Tikv/${name}`],
        [":authority", "fuzz"],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ]),
    ),
    ...frame(0, 1, 1, grpcFrame),
    ...(rng.chance(0.5) ? rng.pick(extras) : []),
  ];
  const bytes = new Uint8Array(conversation);
  return rng.chance(0.5) ? bytes : mutate(rng, bytes);
}

function http1Bytes(env: Environment): Uint8Array {
  const { rng } = env;
  const variants = [
    "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc",
    "POST /config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    `GET /regions HTTP/1.1\r\nHost: x\r\nX: ${"y".repeat(rng.int(20_000))}\r\n\r\n`,
    "GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "GET /health HTTP/9.9\r\n\r\n",
  ];
  const bytes = utf8(rng.pick(variants));
  return rng.chance(0.5) ? bytes : mutate(rng, bytes);
}

function socketCase(env: Environment, index: number): FuzzCase {
  const toGrpc = env.rng.chance(0.6);
  const addr = toGrpc ? env.target.grpcAddr : env.target.statusAddr;
  const bytes = toGrpc ? http2Bytes(env) : http1Bytes(env);
  return {
    index,
    kind: toGrpc ? "socket/grpc" : "socket/status",
    bytes: [bytes],
    send: async () => {
      const [hostname, port] = [
        addr.slice(0, addr.lastIndexOf(":")),
        Number(addr.slice(addr.lastIndexOf(":") + 1)),
      ];
      const connection = await Deno.connect({ hostname, port });
      try {
        await connection.write(bytes).catch(() => 0);
        const buffer = new Uint8Array(4096);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const read = await Promise.race([
          connection.read(buffer).catch(() => null),
          new Promise<"open">((resolve) =>
            timer = setTimeout(() => resolve("open"), SOCKET_READ_MS)
          ),
        ]);
        clearTimeout(timer);
        return read === "open"
          ? "socket open"
          : read === null
          ? "socket closed"
          : "socket answered";
      } finally {
        connection.close();
      }
    },
  };
}

/** Request `index` of the run: the kinds in fixed proportions. */
function nextCase(env: Environment, index: number): FuzzCase | null {
  const roll = env.rng.next();
  if (roll < 0.30) return tikvCase(env, index);
  if (roll < 0.33) return unservedTikvCase(env, index);
  if (roll < 0.63) return batchCase(env, index);
  if (roll < 0.75) return pdCase(env, index);
  if (roll < 0.83) return tsoCase(env, index);
  if (roll < 0.93) return statusCase(env, index);
  return socketCase(env, index);
}

function keyPool(space: string): Uint8Array[] {
  return Array.from(
    { length: KEY_POOL },
    (_, i) => utf8(`fz/${space}/${String(i).padStart(2, "0")}`),
  );
}

/** The cluster id and a current timestamp, from the store's PD face. */
async function pdFacts(client: grpc.Client): Promise<{ clusterId: bigint; ts: bigint }> {
  const call = <T>(path: string, bytes: Uint8Array, decode: (bytes: Uint8Array) => T) =>
    new Promise<T>((resolve, reject) =>
      client.makeUnaryRequest<Uint8Array, Uint8Array>(path, identity, asBytes, bytes, {
        deadline: Date.now() + UNARY_DEADLINE_MS,
      }, (error, response) => error ? reject(error) : resolve(decode(response!)))
    );
  const members = await call(
    "/pdpb.PD/GetMembers",
    pdpb.GetMembersRequest.encode({}).finish(),
    (bytes) => pdpb.GetMembersResponse.decode(bytes),
  );
  const clusterId = members.header?.clusterId ?? 0n;
  const ts = await new Promise<bigint>((resolve, reject) => {
    const tso = client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      "/pdpb.PD/Tso",
      identity,
      asBytes,
      { deadline: Date.now() + UNARY_DEADLINE_MS },
    );
    tso.on("data", (bytes: Uint8Array) => {
      const response = pdpb.TsoResponse.decode(bytes);
      resolve(composeTs(response.timestamp?.physical ?? 0n, response.timestamp?.logical ?? 0n));
      tso.end();
    });
    tso.on("error", reject);
    tso.write(pdpb.TsoRequest.encode({ header: { clusterId }, count: 1 }).finish());
  });
  return { clusterId, ts };
}

function buildEnvironment(
  target: FuzzTarget,
  client: grpc.Client,
  seed: number,
  facts: { clusterId: bigint; ts: bigint },
): Environment {
  const schema = loadSchema();
  const served = new Set(COMMANDS.map((command) => command.name));
  const tikvMethods = Object.keys(schema.tikv.methods);
  const servedPd = new Set(Object.keys(pdServiceDefinition()).filter((name) => name !== "Tso"));
  const members = schema.batchRequest.fieldsArray.map((field) => ({
    field: field.id,
    name: field.name,
    type: field.resolvedType as protobuf.Type,
  }));
  return {
    schema,
    target,
    client,
    rng: new SeededRandom(seed),
    rawKeys: keyPool("r"),
    txnKeys: keyPool("t"),
    baseTs: facts.ts,
    clusterId: facts.clusterId,
    servedTikv: tikvMethods.filter((name) => served.has(name)),
    unservedTikv: tikvMethods.filter((name) => !served.has(name) && name !== "BatchCommands"),
    servedPd: [...servedPd],
    unservedPd: Object.keys(schema.pd.methods).filter((name) =>
      !servedPd.has(name) && name !== "Tso"
    ),
    internal: {},
    members: {
      served: members.filter((member) => COMMANDS_BY_BATCH_NAME.has(member.name)),
      unserved: members.filter((member) => !COMMANDS_BY_BATCH_NAME.has(member.name)),
    },
  };
}

/** Why an answer is a failure, or null. */
function judge(answer: string, strict: boolean): string | null {
  switch (answer) {
    case "DEADLINE_EXCEEDED":
      return "no answer before the deadline (a hang)";
    case "INTERNAL":
      return strict ? "answered INTERNAL (a handler threw on what the client sent)" : null;
    case "UNAVAILABLE":
      return "answered UNAVAILABLE (the connection was lost)";
    default:
      return null;
  }
}

/** A request in one line: index, kind and bytes (the first 96 of each message, or `whole`). */
function describeCase(fuzzCase: FuzzCase, whole = false): string {
  const shown = whole ? Infinity : 96;
  const hex = fuzzCase.bytes.map((bytes) =>
    toHex(bytes.subarray(0, shown)) + (bytes.length > shown ? "…" : "")
  );
  return `#${fuzzCase.index} ${fuzzCase.kind} [${hex.join(", ")}]`;
}

/** Runs the fuzzer against the store at `target` (see the module header). */
export async function runFuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = {
    seed: options.seed,
    sent: {},
    answers: {},
    skipped: 0,
    failures: [],
    internal: {},
  };
  const fail = (failure: string) => {
    if (report.failures.length < MAX_FAILURES_KEPT) report.failures.push(failure);
    options.log?.(`fuzz: FAILURE ${failure}`);
  };
  let exitedWith: string | null = null;
  options.exited.then((description) => {
    exitedWith = description;
  });
  const client = new grpc.Client(target.grpcAddr, grpc.credentials.createInsecure());
  try {
    await writeCanaries(target.grpcAddr);
    const env = buildEnvironment(target, client, options.seed, await pdFacts(client));
    report.internal = env.internal;
    const endMs = Date.now() + options.durationMs;
    let index = 0;
    const lane = async () => {
      while (Date.now() < endMs && exitedWith === null) {
        if (options.checkEvery && index > 0 && index % options.checkEvery === 0) {
          const problems = await checkCanaries(target.grpcAddr).catch((error) => [String(error)]);
          if (problems.length > 0) {
            fail(`before #${index}: ${problems.join(", ")}`);
            return;
          }
        }
        const fuzzCase = nextCase(env, index++);
        if (fuzzCase === null) {
          report.skipped++;
          continue;
        }
        report.sent[fuzzCase.kind] = (report.sent[fuzzCase.kind] ?? 0) + 1;
        if (options.verbose) options.log?.(`fuzz: sending ${describeCase(fuzzCase, true)}`);
        let answer: string;
        try {
          answer = await fuzzCase.send();
        } catch (error) {
          answer = `error ${(error as Error).name}`;
          if (exitedWith === null) fail(`${describeCase(fuzzCase)}: ${String(error)}`);
        }
        report.answers[answer] = (report.answers[answer] ?? 0) + 1;
        const why = judge(answer, options.strict ?? false);
        if (why !== null && exitedWith === null) fail(`${describeCase(fuzzCase)}: ${why}`);
        if (exitedWith !== null) {
          fail(
            `the store exited (${exitedWith}) while ${
              describeCase(fuzzCase)
            } was in flight or just after`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? DEFAULT_CONCURRENCY }, lane));
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (exitedWith !== null) {
      if (report.failures.length === 0) fail(`the store exited: ${exitedWith}`);
      return report;
    }
    await checkAfter(target, options, fail);
  } finally {
    client.close();
  }
  return report;
}

/** After the run: the store answers, no worker died, the canaries are intact. */
async function checkAfter(
  target: FuzzTarget,
  options: FuzzOptions,
  fail: (failure: string) => void,
): Promise<void> {
  const health = await fetch(`http://${target.statusAddr}/health`, {
    signal: AbortSignal.timeout(UNARY_DEADLINE_MS),
  })
    .then(async (response) => (await response.text(), response.status), (error) => String(error));
  if (health !== 200) fail(`after the run /health answered ${health}`);
  const problems = await checkCanaries(target.grpcAddr).catch((error) => [
    `the canaries could not be read: ${String(error)}`,
  ]);
  for (const problem of problems) fail(`after the run: ${problem}`);
  const log = await options.readLog?.() ?? "";
  for (const line of log.split("\n")) {
    if (/region worker died|uncaught|panic/i.test(line)) fail(`store log: ${line.slice(0, 400)}`);
  }
}

/** The report in a few lines: seed, requests by kind, answers by status, failures. */
export function formatReport(report: FuzzReport): string {
  const total = Object.values(report.sent).reduce((sum, count) => sum + count, 0);
  const byGroup: Record<string, number> = {};
  for (const [kind, count] of Object.entries(report.sent)) {
    const group = kind.split("/")[0]!;
    byGroup[group] = (byGroup[group] ?? 0) + count;
  }
  const sorted = (counts: Record<string, number>) =>
    Object.entries(counts).sort(([, a], [, b]) => b - a).map(([name, count]) => `${name} ${count}`);
  const list = (counts: Record<string, number>) => sorted(counts).join(", ");
  return [
    `fuzz: seed ${report.seed}: ${total} requests sent, ${report.skipped} skipped (could reach a canary)`,
    `fuzz: sent by kind: ${list(byGroup)}`,
    `fuzz: sent by method: ${list(report.sent)}`,
    `fuzz: answers: ${list(report.answers)}`,
    `fuzz: INTERNAL and UNKNOWN answers: ${
      Object.keys(report.internal).length === 0
        ? "none"
        : sorted(report.internal).map((line) => `\n  ${line}`).join("")
    }`,
    report.failures.length === 0
      ? "fuzz: no failures"
      : `fuzz: ${report.failures.length} failures:\n  ${report.failures.join("\n  ")}`,
  ].join("\n");
}
