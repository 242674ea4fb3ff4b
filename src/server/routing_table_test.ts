/**
 * The routing table (DESIGN.md §4.1: "a table, not a modulo"): new regions go to the
 * least-loaded worker, moves keep every region in exactly one group, and an unknown id has no
 * group (its requests are answered RegionNotFound by whichever worker gets them).
 */
import assert from "node:assert/strict";
import { ROUTING_TABLE_MAX_REGIONS } from "../constants.ts";
import { AssertionError } from "../util/assert.ts";
import { describeRoutingFailure, RoutingTable } from "./routing_table.ts";

/** The table's invariant: every region in exactly one group, the per-group lists agreeing. */
function checkConsistent(table: RoutingTable): void {
  let counted = 0;
  for (let group = 0; group < table.groups; group++) {
    for (const regionId of table.regionsOf(group)) {
      assert.equal(table.groupOf(regionId), group);
      counted++;
    }
  }
  assert.equal(counted, table.size);
}

Deno.test("new regions go to the least-loaded worker, the lowest on a tie: with two workers, both serve", () => {
  const table = new RoutingTable(2);
  assert.equal(table.add(1n), 0);
  assert.equal(table.add(2n), 1);
  assert.equal(table.add(3n), 0);
  assert.equal(table.add(10n), 1);
  assert.deepEqual(table.regionsOf(0), [1n, 3n]);
  assert.deepEqual(table.regionsOf(1), [2n, 10n]);
  // An explicit group (a split region stays with its parent's worker) is honoured.
  assert.equal(table.add(4n, { group: 1 }), 1);
  assert.equal(table.add(5n), 0, "group 0 has fewer regions now");
  checkConsistent(table);
});

Deno.test("a moved region is served by its new worker only; the table stays consistent", () => {
  const table = new RoutingTable(3);
  for (const id of [1n, 2n, 3n]) table.add(id);
  assert.equal(table.move(1n, 2), 0);
  assert.equal(table.groupOf(1n), 2);
  assert.deepEqual(table.regionsOf(0), []);
  assert.deepEqual(table.regionsOf(2), [3n, 1n]);
  assert.equal(table.leastLoaded(), 0);
  assert.equal(table.move(1n, 2), 2, "a move to its own group is a no-op");
  checkConsistent(table);
  assert.equal(table.remove(2n), 1);
  assert.equal(table.groupOf(2n), undefined);
  checkConsistent(table);
});

Deno.test("unknown regions, groups out of range and duplicate ids are refused by name", () => {
  const table = new RoutingTable(2);
  table.add(7n);
  assert.equal(table.groupOf(8n), undefined);
  const cases = [
    [table.add(7n), "region 7 is already served by worker 0"],
    [table.move(8n, 1), "region 8 is not in the routing table"],
    [table.remove(8n), "region 8 is not in the routing table"],
    [table.move(7n, 2), "worker 2 does not exist (this store has 2)"],
    [table.add(9n, { group: -1 }), "worker -1 does not exist (this store has 2)"],
  ] as const;
  for (const [result, message] of cases) {
    assert.ok(typeof result === "object", `refused: ${message}`);
    assert.equal(describeRoutingFailure(result), message);
  }
  assert.equal(table.size, 1);
  checkConsistent(table);
  assert.throws(() => new RoutingTable(0), AssertionError);
});

Deno.test("the table holds at most ROUTING_TABLE_MAX_REGIONS regions", () => {
  const table = new RoutingTable(4);
  for (let id = 1; id <= ROUTING_TABLE_MAX_REGIONS; id++) table.add(BigInt(id));
  assert.deepEqual(table.add(0n), { code: "TableFull", limit: ROUTING_TABLE_MAX_REGIONS });
  assert.equal(table.size, ROUTING_TABLE_MAX_REGIONS);
  assert.equal(table.regionsOf(3).length, ROUTING_TABLE_MAX_REGIONS / 4, "spread evenly");
});
