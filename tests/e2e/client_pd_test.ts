/**
 * `RawKV` routed through PD (`pdpb.PD` GetMembers / GetRegion / GetStore) against a real store,
 * whose embedded PD answers at its gRPC address. A standalone store must serve `pdpb.PD`: a
 * failure to connect is a failure of this test, never a skip.
 */
import assert from "node:assert/strict";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "RawKV through the store's PD: cluster id, region 1 over every key, store 1's address",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const resolver = await PdResolver.connect([server.grpcAddr]);
      const client = new RawKV(resolver);
      try {
        assert.notEqual(resolver.pd.clusterId, 0n);
        const deadline = { deadlineMs: Date.now() + 5000 };
        const region = await resolver.locateKey(utf8("any"), deadline);
        assert.deepEqual([region.id, region.startKey.length, region.endKey.length], [1n, 0, 0]);
        assert.equal((await resolver.locateEndKey(new Uint8Array(0), deadline)).id, 1n);
        assert.equal(await resolver.storeAddress(region.leader.storeId, deadline), server.grpcAddr);
        await client.put("through-pd", "yes");
        assert.equal(fromUtf8((await client.get("through-pd"))!), "yes");
        assert.equal((await client.scan("")).length, 1);
      } finally {
        client.close();
      }
    }),
});
