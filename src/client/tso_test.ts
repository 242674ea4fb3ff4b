/** The batched TSO client against a fake PD serving GetMembers and the Tso stream. */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { pdpb } from "../../proto/mod.ts";
import { PdError } from "./errors.ts";
import { bytesMethod } from "../util/grpc_bytes.ts";
import { physicalOf, TsoClient } from "./tso.ts";

const CLUSTER_ID = 77n;

/** A fake PD: answers Tso requests from a counter; can break streams or go backwards. */
class FakePd {
  readonly server = new grpc.Server();
  address = "";
  requests: number[] = [];
  /** Break the stream on this request number (1-based), once. */
  breakAt = 0;
  physicalMs = 1_000_000;
  logical = 0;

  async start(): Promise<void> {
    this.server.addService({
      GetMembers: bytesMethod("/pdpb.PD/GetMembers"),
      Tso: bytesMethod("/pdpb.PD/Tso", true),
    }, {
      GetMembers: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => {
        const response = pdpb.GetMembersResponse.encode({ header: { clusterId: CLUSTER_ID } });
        callback(null, Buffer.from(response.finish()));
      },
      Tso: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", (bytes: Buffer) => {
          const request = pdpb.TsoRequest.decode(bytes);
          assert.equal(request.header?.clusterId, CLUSTER_ID);
          this.requests.push(request.count);
          if (this.requests.length === this.breakAt) {
            call.destroy(Object.assign(new Error("broken"), { code: grpc.status.UNAVAILABLE }));
            return;
          }
          this.logical += request.count;
          call.write(Buffer.from(
            pdpb.TsoResponse.encode({
              header: { clusterId: CLUSTER_ID },
              count: request.count,
              timestamp: { physical: BigInt(this.physicalMs), logical: BigInt(this.logical - 1) },
            }).finish(),
          ));
        });
        call.on("end", () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createInsecure(),
        (error, bound) => error ? reject(error) : resolve(bound),
      )
    );
    this.address = `127.0.0.1:${port}`;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

async function withFakePd(body: (pd: FakePd, tso: TsoClient) => Promise<void>): Promise<void> {
  const pd = new FakePd();
  await pd.start();
  const tso = await TsoClient.connect([pd.address], { responseTimeoutMs: 200 });
  try {
    await body(pd, tso);
  } finally {
    tso.close();
    pd.stop();
  }
}

Deno.test({
  name: "TsoClient: concurrent callers share requests; timestamps are distinct and increasing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withFakePd(async (pd, tso) => {
      const first = await tso.getTimestamp();
      assert.equal(physicalOf(first), pd.physicalMs);
      const many = await Promise.all(Array.from({ length: 500 }, () => tso.getTimestamp()));
      assert.equal(new Set(many).size, 500);
      for (let i = 1; i < many.length; i++) assert.ok(many[i]! > many[i - 1]!, "in asking order");
      assert.ok(many[0]! > first);
      assert.ok(pd.requests.length <= 4, `500 callers took ${pd.requests.length} requests`);
      assert.equal(pd.requests.reduce((a, b) => a + b, 0), 501);
      assert.equal(tso.lastTimestamp, many[499]);
    }),
});

Deno.test({
  name: "TsoClient: a broken stream is replaced and its callers retried; PD going back is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withFakePd(async (pd, tso) => {
      await tso.getTimestamp();
      pd.breakAt = pd.requests.length + 1;
      // The broken stream goes silent (the fake's destroyed call ends nothing the client
      // sees): the client gives up on it after responseTimeoutMs and asks on a new stream. Retried
      // callers back off independently, so only distinctness is promised between them.
      const before = tso.lastTimestamp;
      const after = await Promise.all([tso.getTimestamp(), tso.getTimestamp()]);
      assert.notEqual(after[0], after[1]);
      assert.ok(after[0]! > before && after[1]! > before);
      assert.ok(pd.requests.length >= 3, "asked again on a new stream");

      pd.physicalMs -= 10; // a PD that went backwards
      pd.logical = 0;
      await assert.rejects(tso.getTimestamp(), PdError);
    }),
});
