/**
 * The HTTP API served by a standalone store (`serve --http-addr`), through `fetch` and `curl`:
 * every case of `http_suite.ts`, one store for all of them.
 */
import { HTTP_CASES } from "./http_suite.ts";
import { standaloneHttp } from "./http_lib.ts";

Deno.test("HTTP API on a standalone store (serve --http-addr)", async (t) => {
  const fixture = await standaloneHttp();
  try {
    for (const item of HTTP_CASES) await t.step(item.name, () => item.run(fixture.base));
  } finally {
    await fixture.stop();
  }
});
