/**
 * The PD process against the official kvproto definitions (pingcap/kvproto's pdpb.proto,
 * loaded into grpc-js by `kvproto_loader.ts`): a client built from them, as a TiKV client or
 * store is, makes the calls Basalt added (UpdateServiceGCSafePoint, ScatterRegion, GetOperator)
 * and those a store makes (Bootstrap, PutStore, AskBatchSplit), and reads Basalt's answers.
 * Skipped, saying so, when kvproto is not on this machine (KVPROTO_DIR / KVPROTO_GIT).
 */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { kvprotoTest, withKvproto } from "./kvproto_loader.ts";
import { withPd } from "./pd_lib.ts";

const { source, testOptions } = kvprotoTest("pd_kvproto_compat_test");

type Answer = Record<string, unknown> & {
  header: { cluster_id: string; error: { type: string; message: string } | null };
};

function unary(client: grpc.Client, method: string, request: object): Promise<Answer> {
  const call = (client as unknown as Record<string, (...args: unknown[]) => void>)[method]!;
  return new Promise((resolve, reject) => {
    call.call(
      client,
      request,
      { deadline: Date.now() + 10_000 },
      (error: grpc.ServiceError | null, answer: Answer) => error ? reject(error) : resolve(answer),
    );
  });
}

Deno.test({
  name:
    "official pdpb client: bootstrap, stores, splits, service safe points, scatter and GetOperator",
  ...testOptions,
  fn: () =>
    withKvproto(source, (kvproto) =>
      withPd(async (pd) => {
        const client = new kvproto.PD(pd.clientAddr, grpc.credentials.createInsecure());
        try {
          const members = await unary(client, "GetMembers", {});
          const header = { cluster_id: members.header.cluster_id };
          const region = {
            id: "2",
            start_key: Buffer.alloc(0),
            end_key: Buffer.alloc(0),
            region_epoch: { conf_ver: "1", version: "1" },
            peers: [{ id: "3", store_id: "1" }],
          };
          const boot = await unary(client, "Bootstrap", {
            header,
            store: { id: "1", address: "127.0.0.1:20160" },
            region,
          });
          assert.equal(boot.header.error, null);
          const put = await unary(client, "PutStore", {
            header,
            store: { id: "4", address: "127.0.0.1:20161", labels: [{ key: "zone", value: "z1" }] },
          });
          assert.equal(put.header.error, null);
          const store = await unary(client, "GetStore", { header, store_id: "4" });
          assert.deepEqual((store.store as { labels: unknown[] }).labels, [
            { key: "zone", value: "z1" },
          ]);
          const split = await unary(client, "AskBatchSplit", { header, region, split_count: 2 });
          assert.equal((split.ids as unknown[]).length, 2);
          const service = await unary(client, "UpdateServiceGCSafePoint", {
            header,
            service_id: Buffer.from("cdc"),
            TTL: "600",
            safe_point: "400",
          });
          assert.equal(service.header.error, null);
          assert.equal(service.min_safe_point, "0", "gc_worker's entry at 0 is the minimum");
          assert.equal(Buffer.from(service.service_id as Uint8Array).toString(), "gc_worker");
          const scatter = await unary(client, "ScatterRegion", { header, regions_id: ["2"] });
          assert.equal(scatter.finished_percentage, "100");
          const op = await unary(client, "GetOperator", { header, region_id: "2" });
          assert.equal(op.header.error?.type, "REGION_NOT_FOUND");
        } finally {
          client.close();
        }
      })),
});
