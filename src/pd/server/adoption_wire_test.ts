/**
 * `basalt.PdAdmin/AdoptStandalone`'s JSON: what the store writes is what PD reads, and a field
 * in the wrong shape is refused by name.
 */
import assert from "node:assert/strict";
import { utf8 } from "../../util/bytes.ts";
import type { StandaloneAdoption } from "../adoption.ts";
import { adoptionFromJson, AdoptionJsonError, adoptionToJson } from "./adoption_wire.ts";

const REQUEST: StandaloneAdoption = {
  clusterId: (1n << 64n) - 1n,
  tsoBoundMs: 1_733_000_000_000n,
  idBound: 1_002n,
  gcSafePoint: 0n,
  store: { id: 1n, address: "127.0.0.1:20160", statusAddress: "127.0.0.1:20180", version: "8.5.0" },
  region: {
    id: 1n,
    startKey: new Uint8Array(0),
    endKey: utf8("zmmm\u0000"),
    regionEpoch: { confVer: 1n, version: 2n },
    peers: [{ id: 2n, storeId: 1n, role: "Voter" }],
  },
};

Deno.test("AdoptStandalone JSON: a request reads back as written, through JSON text", () => {
  const json = JSON.parse(JSON.stringify(adoptionToJson(REQUEST)));
  assert.deepEqual(adoptionFromJson(json), REQUEST);
});

Deno.test("AdoptStandalone JSON: a field in the wrong shape is refused by name", () => {
  const good = adoptionToJson(REQUEST);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["a number for a u64", { ...good, clusterId: 5 }, /"clusterId" must be a u64/],
    ["a u64 past 2^64", { ...good, idBound: String(1n << 64n) }, /"idBound" must be a u64/],
    ["no store", { ...good, store: null }, /"store" must be an object/],
    [
      "a key not hex",
      { ...good, region: { ...(good.region as object), endKey: "zz" } },
      /"endKey" must be lowercase hex/,
    ],
    [
      "two peers",
      { ...good, region: { ...(good.region as object), peers: [{}, {}] } },
      /"region.peers" must be an array of one peer/,
    ],
  ];
  for (const [name, json, message] of cases) {
    assert.throws(() => adoptionFromJson(json), (error: unknown) => {
      assert.ok(error instanceof AdoptionJsonError, name);
      assert.match(error.message, message, name);
      return true;
    });
  }
});
