import assert from "node:assert/strict";
import { kvrpcpb, tikvpb } from "../../proto/mod.ts";
import { utf8 } from "../util/bytes.ts";
import {
  batchFieldOf,
  contextRegionId,
  encodeBatchResponse,
  parseBatchRequest,
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
