/**
 * The HTTP API of `deno task http` (src/gateway/http/main.ts, its own process) over a 3-store
 * cluster, through `fetch` and `curl`: every case of `http_suite.ts`.
 */
import { HTTP_CASES } from "./http_suite.ts";
import { clusterHttp } from "./http_lib.ts";

Deno.test("HTTP API of deno task http over a 3-store cluster", async (t) => {
  const fixture = await clusterHttp();
  try {
    for (const item of HTTP_CASES) await t.step(item.name, () => item.run(fixture.base));
  } finally {
    await fixture.stop();
  }
});
