/**
 * The HTTP API's behaviour, as cases over a base URL: the same cases run against a standalone
 * store (`http_standalone_test.ts`) and a 3-store cluster (`http_cluster_test.ts`). Each case
 * uses keys of its own prefix, so cases can share one fixture.
 */
import assert from "node:assert/strict";
import { curl, fetchJson, fetchWithDeadline } from "./http_lib.ts";

/** One case. */
export interface HttpCase {
  name: string;
  run(base: string): Promise<void>;
}

const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

export const HTTP_CASES: HttpCase[] = [
  {
    name: "PUT then GET a key: bytes by default, JSON on Accept, 404 JSON after DELETE",
    async run(base) {
      const put = await fetchWithDeadline(`${base}/v1/kv/put-get:a`, { method: "PUT", body: "v1" });
      assert.equal(put.status, 204);
      await put.body?.cancel();
      const raw = await fetchWithDeadline(`${base}/v1/kv/put-get:a`);
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get("content-type"), "application/octet-stream");
      assert.equal(await raw.text(), "v1");
      const asJson = await fetchJson(`${base}/v1/kv/put-get:a`, {
        headers: { accept: "application/json" },
      });
      assert.deepEqual(asJson.body, { key: "put-get:a", value: "v1", ttl_seconds: null });
      const deleted = await fetchWithDeadline(`${base}/v1/kv/put-get:a`, { method: "DELETE" });
      assert.equal(deleted.status, 204);
      await deleted.body?.cancel();
      const gone = await fetchJson(`${base}/v1/kv/put-get:a`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error.code, "key_not_found");
    },
  },
  {
    name: "a JSON PUT with ttl_seconds expires; the TTL left is reported",
    async run(base) {
      const put = await fetchJson(`${base}/v1/kv/ttl:a`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value: "short", ttl_seconds: 1 }),
      });
      assert.equal(put.status, 204);
      const fresh = await fetchJson(`${base}/v1/kv/ttl:a?format=json`);
      assert.equal(fresh.status, 200);
      assert.equal(fresh.body.ttl_seconds, 1);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      assert.equal((await fetchJson(`${base}/v1/kv/ttl:a`)).status, 404, "expired");
      const scan = await fetchJson(`${base}/v1/kv?prefix=ttl:`);
      assert.deepEqual(scan.body.items, [], "an expired pair is not scanned");
    },
  },
  {
    name: "keys and values that are not UTF-8 travel as percent-escapes and base64",
    async run(base) {
      const put = await fetchJson(`${base}/v1/kv/bin:%FF%00`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value_base64: "AP8=" }),
      });
      assert.equal(put.status, 204);
      const raw = await fetchWithDeadline(`${base}/v1/kv/bin:%FF%00`);
      assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), Uint8Array.of(0x00, 0xff));
      const scan = await fetchJson(`${base}/v1/kv?prefix=bin:`);
      assert.deepEqual(scan.body.items, [{
        key_base64: btoa("bin:\xff\x00"),
        value_base64: "AP8=",
        ttl_seconds: null,
      }]);
    },
  },
  {
    name: "GET /v1/kv pages forward and in reverse with cursors, within prefix/start/end",
    async run(base) {
      const keys = Array.from({ length: 7 }, (_, i) => `page:${i}`);
      const puts = keys.map((key) => ({ key, value: key.toUpperCase() }));
      assert.equal((await fetchJson(`${base}/v1/txn`, json({ puts }))).status, 200);
      const walk = async (query: string) => {
        const seen: string[] = [];
        let cursor: string | null = "";
        for (let pages = 0; cursor !== null; pages++) {
          assert.ok(pages < 10, "paging ends");
          const page = await fetchJson(`${base}/v1/kv?${query}&limit=3&cursor=${cursor}`);
          assert.equal(page.status, 200, JSON.stringify(page.body));
          assert.ok(page.body.items.length <= 3);
          seen.push(...page.body.items.map((item: { key: string }) => item.key));
          cursor = page.body.cursor;
        }
        return seen;
      };
      assert.deepEqual(await walk("prefix=page:"), keys);
      assert.deepEqual(await walk("prefix=page:&reverse=true"), [...keys].reverse());
      assert.deepEqual(await walk("start=page:2&end=page:5"), ["page:2", "page:3", "page:4"]);
      assert.deepEqual(await walk("prefix=page:&start=page:5&reverse=1"), ["page:6", "page:5"]);
    },
  },
  {
    name: "POST /v1/txn commits reads, compares, puts and deletes as one transaction",
    async run(base) {
      await fetchJson(`${base}/v1/txn`, json({ puts: [{ key: "txn:a", value: "1" }] }));
      const done = await fetchJson(
        `${base}/v1/txn`,
        json({
          compare: [{ key: "txn:a", value: "1" }, { key: "txn:b", exists: false }],
          reads: [{ key: "txn:a" }, { key: "txn:missing" }],
          puts: [{ key: "txn:b", value: "2" }],
          deletes: [{ key: "txn:a" }],
        }),
      );
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.deepEqual(done.body, {
        committed: true,
        reads: [
          { key: "txn:a", value: "1", ttl_seconds: null, found: true },
          { key: "txn:missing", found: false },
        ],
      });
      assert.equal((await fetchJson(`${base}/v1/kv/txn:a`)).status, 404);
      const b = await fetchWithDeadline(`${base}/v1/kv/txn:b`);
      assert.equal(await b.text(), "2");
    },
  },
  {
    name: "a compare that does not hold refuses the transaction with 409 and writes nothing",
    async run(base) {
      await fetchJson(`${base}/v1/txn`, json({ puts: [{ key: "cmp:a", value: "old" }] }));
      const refused = await fetchJson(
        `${base}/v1/txn`,
        json({
          compare: [{ key: "cmp:a", value: "expected" }],
          puts: [{ key: "cmp:b", value: "never" }],
        }),
      );
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, "compare_failed");
      assert.equal(refused.body.error.index, 0);
      assert.equal(refused.body.error.value, "old");
      assert.equal((await fetchJson(`${base}/v1/kv/cmp:b`)).status, 404, "nothing written");
    },
  },
  {
    name: "a key put by PUT /v1/kv is read inside POST /v1/txn, and the reverse",
    async run(base) {
      const put = await fetchWithDeadline(`${base}/v1/kv/mix:a?ttl_seconds=100`, {
        method: "PUT",
        body: "from-put",
      });
      assert.equal(put.status, 204);
      await put.body?.cancel();
      const read = await fetchJson(`${base}/v1/txn`, json({ reads: [{ key: "mix:a" }] }));
      assert.equal(read.body.reads[0].value, "from-put");
      assert.ok(read.body.reads[0].ttl_seconds > 90);
      await fetchJson(`${base}/v1/txn`, json({ puts: [{ key: "mix:b", value: "from-txn" }] }));
      assert.equal(await (await fetchWithDeadline(`${base}/v1/kv/mix:b`)).text(), "from-txn");
    },
  },
  {
    name: "concurrent compare-and-set transactions: exactly one wins each round",
    async run(base) {
      await fetchJson(`${base}/v1/txn`, json({ puts: [{ key: "cas:n", value: "0" }] }));
      for (let round = 0; round < 3; round++) {
        const attempts = await Promise.all(
          [0, 1, 2, 3].map((writer) =>
            fetchJson(
              `${base}/v1/txn`,
              json({
                compare: [{ key: "cas:n", value: String(round) }],
                puts: [{ key: "cas:n", value: String(round + 1) }, {
                  key: `cas:winner:${round}:${writer}`,
                  value: "1",
                }],
              }),
            )
          ),
        );
        const statuses = attempts.map((a) => a.status).sort();
        assert.deepEqual(
          statuses,
          [200, 409, 409, 409],
          JSON.stringify(attempts.map((a) => a.body)),
        );
      }
      const winners = await fetchJson(`${base}/v1/kv?prefix=cas:winner:`);
      assert.equal(winners.body.items.length, 3);
      assert.equal(await (await fetchWithDeadline(`${base}/v1/kv/cas:n`)).text(), "3");
    },
  },
  {
    name: "errors are JSON with stable codes: 400 bad JSON/base64/limit, 404 path, 405 with Allow",
    async run(base) {
      const badJson = await fetchJson(`${base}/v1/txn`, { method: "POST", body: "{oops" });
      assert.equal(badJson.status, 400);
      assert.equal(badJson.body.error.code, "invalid_json");
      const badBase64 = await fetchJson(`${base}/v1/kv?prefix_base64=***`);
      assert.equal(badBase64.body.error.code, "invalid_base64");
      const badLimit = await fetchJson(`${base}/v1/kv?limit=1001`);
      assert.equal(badLimit.status, 400);
      assert.equal(badLimit.body.error.code, "invalid_argument");
      const unknownPath = await fetchJson(`${base}/v2/kv`);
      assert.equal(unknownPath.status, 404);
      assert.equal(unknownPath.body.error.code, "not_found");
      const wrongMethod = await fetchJson(`${base}/v1/txn`);
      assert.equal(wrongMethod.status, 405);
      assert.equal(wrongMethod.headers.get("allow"), "POST");
      assert.equal(wrongMethod.body.error.code, "method_not_allowed");
      const emptyKey = await fetchJson(`${base}/v1/txn`, json({ puts: [{ key: "", value: "" }] }));
      assert.equal(emptyKey.body.error.code, "invalid_argument");
    },
  },
  {
    name: "the OpenAPI document lists every route",
    async run(base) {
      const doc = await fetchJson(`${base}/v1/openapi.json`);
      assert.equal(doc.status, 200);
      assert.equal(doc.body.openapi, "3.1.0");
      assert.deepEqual(Object.keys(doc.body.paths).sort(), [
        "/v1/kv",
        "/v1/kv/{key}",
        "/v1/openapi.json",
        "/v1/txn",
      ]);
    },
  },
  {
    name: "curl: PUT with --data-binary and a TTL, GET, scan, transaction, DELETE",
    async run(base) {
      const put = await curl([
        "-X",
        "PUT",
        "--data-binary",
        "via curl",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${base}/v1/kv/curl:a?ttl_seconds=50`,
      ]);
      assert.equal(put.stdout, "204");
      assert.equal((await curl([`${base}/v1/kv/curl:a`])).stdout, "via curl");
      const headers = await curl(["-D", "-", "-o", "/dev/null", `${base}/v1/kv/curl:a`]);
      assert.match(headers.stdout, /basalt-ttl-seconds: (50|49)\r\n/i);
      const scan = JSON.parse((await curl([`${base}/v1/kv?prefix=curl:`])).stdout);
      assert.equal(scan.items[0].value, "via curl");
      const txn = JSON.parse(
        (await curl([
          "-X",
          "POST",
          "-H",
          "content-type: application/json",
          "-d",
          '{"reads":[{"key":"curl:a"}]}',
          `${base}/v1/txn`,
        ])).stdout,
      );
      assert.equal(txn.reads[0].value, "via curl");
      const deleted = await curl([
        "-X",
        "DELETE",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${base}/v1/kv/curl:a`,
      ]);
      assert.equal(deleted.stdout, "204");
      const gone = await curl(["-w", " %{http_code}", `${base}/v1/kv/curl:a`]);
      assert.match(gone.stdout, /"key_not_found".* 404$/);
    },
  },
];
