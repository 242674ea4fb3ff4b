/** The npm Redis client (node-redis 4.7.0, pinned in deno.json) as the tests use it: one `send` per command. */
import { createClient } from "redis";
import type { Send } from "./redis_suite.ts";

/** A connected node-redis client of 127.0.0.1:`port` and its `send`. */
export async function npmClient(
  port: number,
  options: { resp3?: boolean } = {},
): Promise<{ send: Send; close(): Promise<void>; client: ReturnType<typeof createClient> }> {
  const client = createClient(
    {
      socket: { host: "127.0.0.1", port, reconnectStrategy: false },
      ...(options.resp3 === true ? { RESP: 3 } : {}),
    } as Parameters<typeof createClient>[0],
  );
  client.on("error", () => {}); // failures surface as rejected commands
  await client.connect();
  const send: Send = async (args) => {
    try {
      return await client.sendCommand(args);
    } catch (error) {
      return { error: (error as Error).message };
    }
  };
  return {
    send,
    client,
    close: async () => {
      try {
        await client.quit();
      } catch {
        await client.disconnect().catch(() => {});
      }
    },
  };
}
