/**
 * `RawKV` routed through PD (`pdpb.PD` GetMembers / GetRegion / GetStore) against a real store,
 * whose embedded PD answers at its gRPC address. Skipped, saying why, while the store does not
 * serve `pdpb.PD` yet.
 */
import assert from "node:assert/strict";
import { UnsupportedError } from "../../src/client/errors.ts";
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
      let resolver: PdResolver;
      try {
        resolver = await PdResolver.connect([server.grpcAddr]);
      } catch (error) {
        if (!(error instanceof UnsupportedError)) throw error;
        console.log(`skipped: the store does not serve pdpb.PD yet (${error.message})`);
        return;
      }
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
