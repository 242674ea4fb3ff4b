import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import protobuf from "protobufjs";
import { errorpb, kvrpcpb, metapb, pdpb, tikvpb } from "./mod.ts";

const text = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const U64_MAX = 0xffff_ffff_ffff_ffffn;

Deno.test("RawGetRequest encodes to kvproto's known bytes (issue 3)", () => {
  const bytes = kvrpcpb.RawGetRequest.encode({
    context: {
      regionId: 1n,
      regionEpoch: { confVer: 1n, version: 1n },
      peer: { id: 2n, storeId: 1n },
    },
    key: text("k"),
  }).finish();
  assertEquals(hex(bytes), "0a0e08011204080110011a040802100112016b");
  const decoded = kvrpcpb.RawGetRequest.decode(bytes);
  assertEquals(decoded.context?.regionId, 1n);
  assertEquals(decoded.context?.peer?.id, 2n);
  assertEquals(hex(decoded.key), "6b");
});

// BatchCommandsRequest{requests: [Request{RawPut (15): {key (2): "k", value (3): "v"}}],
// request_ids (2, packed): [42]}:
//   RawPutRequest            12 01 6b  1a 01 76
//   Request.RawPut, tag 15/2 7a 06 <RawPutRequest>
//   requests, tag 1/2        0a 08 <Request>
//   request_ids, tag 2/2     12 01 2a
Deno.test("BatchCommandsRequest with a RawPut and request_ids encodes field by field as kvproto", () => {
  const bytes = tikvpb.BatchCommandsRequest.encode({
    requests: [{ RawPut: { key: text("k"), value: text("v") } }],
    requestIds: [42n],
  }).finish();
  assertEquals(hex(bytes), "0a087a0612016b1a0176" + "12012a");
  const decoded = tikvpb.BatchCommandsRequest.decode(bytes);
  assertEquals(decoded.requests[0]?.cmd, "RawPut");
  assertEquals(decoded.requestIds, [42n]);
});

// BatchCommandsResponse{responses: [Response{RawGet (13): {value (3): "v"}}], request_ids: [1]}.
Deno.test("BatchCommandsResponse with a RawGet answer encodes as kvproto", () => {
  const bytes = tikvpb.BatchCommandsResponse.encode({
    responses: [{ RawGet: { value: text("v") } }],
    requestIds: [1n],
  }).finish();
  assertEquals(hex(bytes), "0a056a031a0176" + "120101");
  assertEquals(tikvpb.BatchCommandsResponse.decode(bytes).responses[0]?.cmd, "RawGet");
});

// RawGetResponse{region_error (1): {epoch_not_match (5): {current_regions (1): [
//   Region{id (1): 1, region_epoch (4): {conf_ver: 1, version: 2}}]}}}.
Deno.test("a region error (EpochNotMatch with the current region) encodes as kvproto", () => {
  const bytes = kvrpcpb.RawGetResponse.encode({
    regionError: {
      epochNotMatch: { currentRegions: [{ id: 1n, regionEpoch: { confVer: 1n, version: 2n } }] },
    },
  }).finish();
  assertEquals(hex(bytes), "0a0c2a0a0a080801220408011002");
  const error = kvrpcpb.RawGetResponse.decode(bytes).regionError;
  assertEquals(error?.epochNotMatch?.currentRegions?.[0]?.regionEpoch?.version, 2n);
  assertEquals(error?.notLeader, null);
});

Deno.test("u64 fields decode as bigint over the whole range, 0n when absent", () => {
  const big = kvrpcpb.GetRequest.encode({ version: U64_MAX }).finish();
  assertEquals(hex(big), "18ffffffffffffffffff01");
  assertEquals(kvrpcpb.GetRequest.decode(big).version, U64_MAX);
  const ts = (1_700_000_000_000n << 18n) | 7n; // a TSO timestamp, above 2^53
  assertEquals(
    kvrpcpb.GetRequest.decode(kvrpcpb.GetRequest.encode({ version: ts }).finish()).version,
    ts,
  );
  const empty = kvrpcpb.GetRequest.decode(new Uint8Array());
  assertEquals(empty.version, 0n);
  assertEquals(typeof empty.version, "bigint");
  assertEquals(hex(kvrpcpb.GetRequest.encode({ version: 0n }).finish()), "");
});

Deno.test("int64 fields round-trip negatives as ten-byte two's complement", () => {
  const bytes = kvrpcpb.PessimisticLockRequest.encode({ waitTimeout: -1n }).finish();
  assertEquals(hex(bytes), "40ffffffffffffffffff01");
  assertEquals(kvrpcpb.PessimisticLockRequest.decode(bytes).waitTimeout, -1n);
  const tso = pdpb.Timestamp.decode(
    pdpb.Timestamp.encode({ physical: 1_700_000_000_000n, logical: 3n }).finish(),
  );
  assertEquals([tso.physical, tso.logical], [1_700_000_000_000n, 3n]);
});

Deno.test("out-of-range 64-bit values are refused, not wrapped", () => {
  throws(() => kvrpcpb.GetRequest.encode({ version: U64_MAX + 1n }).finish(), RangeError);
  throws(() => kvrpcpb.GetRequest.encode({ version: -1n }).finish(), RangeError);
  throws(
    () => kvrpcpb.PessimisticLockRequest.encode({ waitTimeout: 2n ** 63n }).finish(),
    RangeError,
  );
});

Deno.test("a truncated message is an error, not a partial decode", () => {
  const bytes = unhex("0a0e08011204080110011a040802100112016b");
  throws(() => kvrpcpb.RawGetRequest.decode(bytes.subarray(0, bytes.length - 1)));
});

Deno.test("enum values are kvproto's", () => {
  assertEquals(kvrpcpb.Op.PessimisticLock, 5);
  assertEquals(kvrpcpb.Op.CheckNotExists, 6);
  assertEquals(kvrpcpb.Action.LockNotExistDoNothing, 5);
  assertEquals(kvrpcpb.ChecksumAlgorithm.Crc64_Xor, 0);
  assertEquals(kvrpcpb.APIVersion.V2, 2);
  assertEquals(metapb.PeerRole.DemotingVoter, 3);
  assertEquals(pdpb.ErrorType.REGION_NOT_FOUND, 6);
});

Deno.test("a full PrewriteRequest survives a round trip", () => {
  const request: kvrpcpb.IPrewriteRequest = {
    context: {
      regionId: 9n,
      regionEpoch: { confVer: 2n, version: 3n },
      resolvedLocks: [5n, 2n ** 60n],
    },
    mutations: [
      {
        op: kvrpcpb.Op.Put,
        key: text("a"),
        value: text("1"),
        assertion: kvrpcpb.Assertion.NotExist,
      },
      { op: kvrpcpb.Op.Del, key: text("b") },
    ],
    primaryLock: text("a"),
    startVersion: 400n,
    lockTtl: 3000n,
    useAsyncCommit: true,
    secondaries: [text("b")],
    maxCommitTs: U64_MAX,
  };
  const bytes = kvrpcpb.PrewriteRequest.encode(request).finish();
  const again = kvrpcpb.PrewriteRequest.encode(kvrpcpb.PrewriteRequest.decode(bytes)).finish();
  assertEquals(hex(again), hex(bytes));
  const decoded = kvrpcpb.PrewriteRequest.decode(bytes);
  assertEquals(decoded.context?.resolvedLocks, [5n, 2n ** 60n]);
  assertEquals(decoded.mutations[1]?.op, kvrpcpb.Op.Del);
  assertEquals(decoded.maxCommitTs, U64_MAX);
});

Deno.test("static code and protobufjs reflection over the same .proto files agree byte for byte", () => {
  const root = protobuf.loadSync(
    ["kvrpcpb", "tikvpb", "errorpb", "metapb", "pdpb"].map((name) =>
      new URL(`./${name}.proto`, import.meta.url).pathname
    ),
  );
  const samples: [string, Uint8Array][] = [
    [
      "tikvpb.BatchCommandsRequest",
      tikvpb.BatchCommandsRequest.encode({
        requests: [{
          RawBatchPut: {
            pairs: [{ key: text("k"), value: text("v") }],
            ttls: [60n],
            cf: "default",
          },
        }],
        requestIds: [1n, 2n ** 40n],
        clientSendTimeNs: 1_700_000_000_000_000_000n,
      }).finish(),
    ],
    [
      "kvrpcpb.CheckTxnStatusResponse",
      kvrpcpb.CheckTxnStatusResponse.encode({
        lockTtl: 20n,
        action: kvrpcpb.Action.MinCommitTSPushed,
        lockInfo: { primaryLock: text("p"), lockVersion: 10n, lockType: kvrpcpb.Op.Put },
      }).finish(),
    ],
    [
      "errorpb.Error",
      errorpb.Error.encode({
        message: "not leader",
        notLeader: { regionId: 3n, leader: { id: 4n, storeId: 5n, role: metapb.PeerRole.Learner } },
      }).finish(),
    ],
    [
      "pdpb.GetRegionResponse",
      pdpb.GetRegionResponse.encode({
        header: { clusterId: 7n },
        region: {
          id: 2n,
          startKey: text("a"),
          endKey: text("z"),
          peers: [{ id: 3n, storeId: 1n }],
        },
        leader: { id: 3n, storeId: 1n },
      }).finish(),
    ],
  ];
  for (const [name, bytes] of samples) {
    const type = root.lookupType(name);
    const viaReflection = type.encode(type.decode(bytes)).finish();
    assertEquals(hex(viaReflection), hex(bytes), name);
    assert(bytes.length > 0);
  }
});
