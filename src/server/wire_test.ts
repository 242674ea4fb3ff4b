import assert from "node:assert/strict";
import { kvrpcpb, tikvpb } from "../../proto/mod.ts";
import { utf8 } from "../util/bytes.ts";
import { SeededRandom } from "../util/random.ts";
import {
  batchFieldOf,
  contextRegionId,
  encodeBatchResponse,
  parseBatchRequest,
  PROTOBUF_MAX_FIELD_NUMBER,
  requestId,
  subRequestBody,
  subRequestCount,
  WireError,
} from "./wire.ts";

Deno.test("contextRegionId() reads context.region_id without decoding the request", () => {
  const request = kvrpcpb.RawPutRequest.encode({
    key: utf8("k"),
    value: utf8("v"),
    context: { regionId: 300n, regionEpoch: { confVer: 1n, version: 7n }, peer: { id: 2n } },
  }).finish();
  assert.equal(contextRegionId(request), 300);
  assert.equal(contextRegionId(kvrpcpb.RawGetRequest.encode({ key: utf8("k") }).finish()), 0);
  // Malformed: routed as region 0, refused later by the full decoder.
  assert.equal(contextRegionId(new Uint8Array([0x0a, 0x05, 0x08])), 0);
});

Deno.test("parseBatchRequest() frames what protobufjs encodes, packed or not", () => {
  const message = {
    requests: [
      { RawGet: { context: { regionId: 1n }, key: utf8("a") } },
      { Prewrite: { startVersion: 5n } },
      {},
      { Empty: { testId: 9n } },
    ],
    requestIds: [1n, 2n ** 63n + 5n, 3n, 4n],
  };
  const frame = parseBatchRequest(tikvpb.BatchCommandsRequest.encode(message).finish());
  const ids = (f: typeof frame) => f.idStarts.map((_, i) => requestId(f, i));
  assert.equal(subRequestCount(frame), 4);
  assert.deepEqual(ids(frame), message.requestIds);
  assert.deepEqual(frame.fields, [13, 3, 0, 255]);
  assert.equal(contextRegionId(subRequestBody(frame, 0)), 1);
  assert.equal(
    contextRegionId(frame.bytes, frame.bodyStarts[0], frame.bodyEnds[0]),
    1,
    "read in place, by bounds",
  );
  assert.equal(kvrpcpb.PrewriteRequest.decode(subRequestBody(frame, 1)).startVersion, 5n);

  // Unpacked ids (field 2 as separate varints) are legal protobuf too.
  const unpacked = new Uint8Array([0x10, 0x07, 0x10, 0x08]);
  assert.deepEqual(ids(parseBatchRequest(unpacked)), [7n, 8n]);
});

Deno.test("parseBatchRequest() refuses truncated and overrunning messages", () => {
  const good = tikvpb.BatchCommandsRequest.encode({
    requests: [{ RawGet: { key: utf8("abc") } }],
    requestIds: [1n],
  }).finish();
  // Every cut inside a field fails; a cut between fields is a shorter, valid message.
  const requestsEnd = 2 + good[1]!;
  for (let cut = 1; cut < good.length; cut++) {
    if (cut === requestsEnd) continue;
    assert.throws(() => parseBatchRequest(good.subarray(0, cut)), WireError, `cut at ${cut}`);
  }
  assert.throws(() => parseBatchRequest(new Uint8Array([0x0b])), /wire type 3/);
});

Deno.test("encodeBatchResponse() frames responses that protobufjs decodes", () => {
  const responses = [
    tikvpb.BatchCommandsResponse.Response.encode({ RawGet: { value: utf8("v") } }).finish(),
    tikvpb.BatchCommandsResponse.Response.encode({ Empty: { testId: 4n } }).finish(),
  ];
  const decoded = tikvpb.BatchCommandsResponse.decode(
    encodeBatchResponse(responses, [10n, 2n ** 64n - 1n]),
  );
  assert.deepEqual(decoded.requestIds, [10n, 2n ** 64n - 1n]);
  assert.equal(decoded.responses[0]!.cmd, "RawGet");
  assert.equal(decoded.responses[1]!.Empty!.testId, 4n);
  assert.equal(
    tikvpb.BatchCommandsResponse.decode(encodeBatchResponse([], [])).responses.length,
    0,
  );
});

Deno.test("batchFieldOf() learns kvproto's field numbers from the codec", () => {
  assert.equal(batchFieldOf("Get"), 1);
  assert.equal(batchFieldOf("RawGet"), 13);
  assert.equal(batchFieldOf("PessimisticLock"), 23);
  assert.equal(batchFieldOf("Empty"), 255);
});

/** A varint of any value below 2^53 (tags past 2^32 included). */
function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** `Request`s holding one length-delimited member `field` each, with ids 1.. */
function batchOf(...requests: number[][]): Uint8Array {
  const out: number[] = [];
  for (const request of requests) out.push(0x0a, ...varint(request.length), ...request);
  const ids = requests.flatMap((_, i) => varint(i + 1));
  out.push(0x12, ids.length, ...ids);
  return new Uint8Array(out);
}

const member = (field: number, body: number[] = []) => [
  ...varint(field * 8 + 2),
  ...varint(body.length),
  ...body,
];

Deno.test("parseBatchRequest() takes field numbers 1..2^29-1 and refuses 0 and past 2^29-1, at every level", () => {
  // Highest legal field number: framed (an unknown member, answered by its field number).
  assert.deepEqual(parseBatchRequest(batchOf(member(PROTOBUF_MAX_FIELD_NUMBER))).fields, [
    PROTOBUF_MAX_FIELD_NUMBER,
  ]);
  for (const field of [0, PROTOBUF_MAX_FIELD_NUMBER + 1, 2 ** 32, 2 ** 35 + 5]) {
    // Inside a Request (a member tag) …
    assert.throws(() => parseBatchRequest(batchOf(member(field))), /field number/, `${field}`);
    // … and at the top level of the message.
    const top = new Uint8Array([...varint(field * 8), 1]);
    assert.throws(() => parseBatchRequest(top), /field number/, `top-level ${field}`);
  }
});

Deno.test("parseBatchRequest() refuses groups and wire types 6 and 7, inside a Request too", () => {
  for (const wireType of [3, 4, 6, 7]) {
    assert.throws(() => parseBatchRequest(new Uint8Array([5 << 3 | wireType])), WireError);
    assert.throws(() => parseBatchRequest(batchOf([5 << 3 | wireType])), /wire type/);
  }
  // Other wire types of an unknown field are skipped, as protobuf decoders skip them.
  const frame = parseBatchRequest(batchOf([0x08, 0x96, 0x01, ...member(13, [])]));
  assert.deepEqual(frame.fields, [13]);
});

Deno.test("parseBatchRequest() stops framing past maxRequests (requests or ids)", () => {
  const three = batchOf(member(13), member(13), member(13));
  assert.equal(subRequestCount(parseBatchRequest(three, 3)), 3);
  assert.throws(() => parseBatchRequest(three, 2), /more than 2 requests/);
  const ids = new Uint8Array([0x12, 3, 1, 2, 3]);
  assert.throws(() => parseBatchRequest(ids, 2), /more than 2 request ids/);
});

Deno.test("parseBatchRequest() throws only WireError on random and mutated bytes", () => {
  const random = new SeededRandom(20);
  const valid = tikvpb.BatchCommandsRequest.encode({
    requests: [{ RawGet: { context: { regionId: 1n }, key: utf8("a") } }, { Empty: {} }],
    requestIds: [1n, 2n],
  }).finish();
  for (let round = 0; round < 5000; round++) {
    const bytes = round % 2 === 0 ? random.bytes(random.int(40)) : new Uint8Array(valid);
    if (round % 2 === 1) bytes[random.int(bytes.length)]! ^= 1 << random.int(8);
    try {
      const frame = parseBatchRequest(bytes);
      for (let i = 0; i < frame.idStarts.length; i++) requestId(frame, i);
      for (const field of frame.fields) {
        assert.ok(Number.isSafeInteger(field) && field <= PROTOBUF_MAX_FIELD_NUMBER);
      }
    } catch (error) {
      assert.ok(error instanceof WireError, `round ${round}: ${error}`);
    }
    const regionId = contextRegionId(bytes);
    assert.ok(Number.isSafeInteger(regionId) && regionId >= 0, `round ${round}: ${regionId}`);
  }
});

Deno.test("contextRegionId() reads 0 for a region id past 2^53 or a bad tag", () => {
  const huge = new Uint8Array([0x0a, 11, 0x08, ...Array(9).fill(0xff), 0x01]);
  assert.equal(contextRegionId(huge), 0);
  assert.equal(contextRegionId(new Uint8Array([0x0a, 2, 0x08, 7])), 7);
  assert.equal(contextRegionId(new Uint8Array([0x02, 0x0a, 2, 0x08, 7])), 0, "field 0 first");
  assert.equal(contextRegionId(new Uint8Array([0x0a, 3, 0x0b, 0x08, 7])), 0, "a group inside");
});
