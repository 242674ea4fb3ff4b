/** Region lookups as PD's region tree answers them (`pkg/core/region_tree.go`). */
import assert from "node:assert/strict";
import { utf8 } from "../../util/bytes.ts";
import { prevRegion, regionById, regionByKey, scanRegions } from "./region_lookup.ts";
import type { RegionRoute } from "./view.ts";

function route(id: bigint, start: string, end: string): RegionRoute {
  return {
    region: {
      id,
      startKey: utf8(start),
      endKey: utf8(end),
      peers: [{ id: id + 100n, storeId: 1n }],
    },
    leader: { id: id + 100n, storeId: 1n },
  };
}

// ["", "b") ["b", "d") gap ["f", "")
const ROUTES = [route(3n, "f", ""), route(1n, "", "b"), route(2n, "b", "d")];
const ids = (routes: RegionRoute[]) => routes.map((r) => r.region.id);

Deno.test("regionByKey finds the region whose [start, end) holds the key, or null in a gap", () => {
  assert.equal(regionByKey(ROUTES, utf8(""))?.region.id, 1n);
  assert.equal(regionByKey(ROUTES, utf8("a"))?.region.id, 1n);
  assert.equal(regionByKey(ROUTES, utf8("b"))?.region.id, 2n, "start is inclusive");
  assert.equal(regionByKey(ROUTES, utf8("d")), null, "end is exclusive; d..f is a gap");
  assert.equal(regionByKey(ROUTES, utf8("zzz"))?.region.id, 3n);
});

Deno.test("prevRegion is the adjacent region before the key's region, else null", () => {
  assert.equal(prevRegion(ROUTES, utf8("c"))?.region.id, 1n);
  assert.equal(prevRegion(ROUTES, utf8("a")), null, "the first region has none");
  assert.equal(prevRegion(ROUTES, utf8("g")), null, "not adjacent: d..f is a gap");
  assert.equal(prevRegion(ROUTES, utf8("e")), null, "the key is in no region");
});

Deno.test("regionById finds by id, null when unknown", () => {
  assert.equal(regionById(ROUTES, 2n)?.region.id, 2n);
  assert.equal(regionById(ROUTES, 9n), null);
});

Deno.test("scanRegions returns regions intersecting [start, end) in key order, up to limit", () => {
  const scan = (start: string, end: string, limit = 0) =>
    ids(scanRegions(ROUTES, { startKey: utf8(start), endKey: utf8(end), limit }));
  assert.deepEqual(scan("", ""), [1n, 2n, 3n]);
  assert.deepEqual(scan("a", "c"), [1n, 2n]);
  assert.deepEqual(scan("b", "b1"), [2n]);
  assert.deepEqual(scan("c", "f"), [2n], "end is exclusive: the region starting at f is out");
  assert.deepEqual(scan("e", ""), [3n]);
  assert.deepEqual(scan("", "", 2), [1n, 2n]);
  assert.deepEqual(scan("", "", -1), [1n, 2n, 3n], "limit <= 0 means no limit");
});
