/**
 * `/v1/kv/{key}` (GET, PUT, DELETE) and `/v1/kv` (GET: a scan page) over one `Basalt`.
 *
 * - The key is the rest of the path after `/v1/kv/`, percent-decoded to bytes (`%FF` reaches
 *   keys that are not UTF-8).
 * - GET answers the value's bytes (`application/octet-stream`, the TTL left in
 *   `Basalt-Ttl-Seconds`), or JSON `{"key", "value" | "value_base64", "ttl_seconds"}` when asked
 *   by `Accept: application/json` or `?format=json`.
 * - PUT takes the body as the value's bytes (`?ttl_seconds=N`), or, with
 *   `Content-Type: application/json`, `{"value" | "value_base64", "ttl_seconds"}`. 204.
 * - DELETE: 204 whether or not the key was there.
 * - The scan: `prefix`, `start`, `end` (each also as `…_base64`), `limit` (default 100, at most
 *   1000), `reverse`, `cursor` (from the previous page); answers
 *   `{"items": [{"key", "value", "ttl_seconds"}…], "cursor": "<base64url>" | null}`.
 */
import type { Basalt } from "../../embedded/basalt.ts";
import { ttlLeftSeconds } from "../../embedded/layout.ts";
import type { Entry } from "../../embedded/scan.ts";
import { type BodyLimits, readBody, readJson } from "./body.ts";
import {
  asObject,
  bytesField,
  fromBase64,
  fromCursor,
  readTtl,
  requireBytesField,
  toCursor,
} from "./codec.ts";
import { HttpError, jsonResponse } from "./errors.ts";

/** The JSON form of a live entry at `nowMs`. */
export function entryJson(entry: Entry, nowMs: number): Record<string, unknown> {
  return {
    ...bytesField("key", entry.key),
    ...bytesField("value", entry.value),
    ttl_seconds: ttlLeftSeconds(entry.expireAtMs, nowMs),
  };
}

function wantsJson(request: Request, url: URL): boolean {
  const format = url.searchParams.get("format");
  if (format !== null && format !== "json" && format !== "bytes") {
    throw new HttpError(
      400,
      "invalid_argument",
      `format must be "json" or "bytes", not "${format}"`,
    );
  }
  if (format !== null) return format === "json";
  return (request.headers.get("accept") ?? "").includes("application/json");
}

function isJson(request: Request): boolean {
  const type = request.headers.get("content-type") ?? "";
  return type.split(";")[0]!.trim().toLowerCase() === "application/json";
}

/** GET /v1/kv/{key}. */
export async function getKey(db: Basalt, parts: { request: Request; url: URL; key: Uint8Array }) {
  const json = wantsJson(parts.request, parts.url);
  const entry = await db.getEntry(parts.key);
  if (entry === null) {
    throw new HttpError(404, "key_not_found", "no such key", bytesField("key", parts.key));
  }
  const nowMs = Date.now();
  if (json) return jsonResponse(200, entryJson(entry, nowMs));
  const ttl = ttlLeftSeconds(entry.expireAtMs, nowMs);
  const headers: Record<string, string> = { "content-type": "application/octet-stream" };
  if (ttl !== null) headers["basalt-ttl-seconds"] = String(ttl);
  return new Response(entry.value.slice(), { status: 200, headers });
}

/** PUT /v1/kv/{key}. */
export async function putKey(
  db: Basalt,
  parts: { request: Request; url: URL; key: Uint8Array; limits: BodyLimits },
) {
  let value: Uint8Array;
  let ttlSeconds: number | undefined;
  if (isJson(parts.request)) {
    const body = asObject(await readJson(parts.request, parts.limits), "body");
    value = requireBytesField(body, "value", "body");
    ttlSeconds = readTtl(body.ttl_seconds, "body");
    if (parts.url.searchParams.has("ttl_seconds")) {
      throw new HttpError(
        400,
        "invalid_argument",
        "give ttl_seconds in the JSON body or the query, not both",
      );
    }
  } else {
    value = await readBody(parts.request, parts.limits);
    ttlSeconds = queryInteger(parts.url, "ttl_seconds");
  }
  await db.put(parts.key, value, { ttlSeconds });
  return new Response(null, { status: 204 });
}

/** DELETE /v1/kv/{key}. */
export async function deleteKey(db: Basalt, key: Uint8Array) {
  await db.delete(key);
  return new Response(null, { status: 204 });
}

/** GET /v1/kv?…: one page of a scan. */
export async function scanKeys(db: Basalt, url: URL) {
  const known = new Set([
    "prefix",
    "prefix_base64",
    "start",
    "start_base64",
    "end",
    "end_base64",
    "limit",
    "reverse",
    "cursor",
  ]);
  for (const name of url.searchParams.keys()) {
    if (!known.has(name)) {
      throw new HttpError(400, "invalid_argument", `unknown query parameter "${name}"`, {
        parameter: name,
      });
    }
  }
  const cursor = url.searchParams.get("cursor");
  const page = await db.scan({
    prefix: queryBytes(url, "prefix"),
    start: queryBytes(url, "start"),
    end: queryBytes(url, "end"),
    limit: queryInteger(url, "limit"),
    reverse: queryBoolean(url, "reverse"),
    cursor: cursor === null || cursor === "" ? undefined : fromCursor(cursor),
  });
  const nowMs = Date.now();
  return jsonResponse(200, {
    items: page.entries.map((entry) => entryJson(entry, nowMs)),
    cursor: page.cursor === null ? null : toCursor(page.cursor),
  });
}

/** Query parameter `name` (or `name_base64`) as bytes, or undefined. */
function queryBytes(url: URL, name: string): Uint8Array | undefined {
  const text = url.searchParams.get(name);
  const encoded = url.searchParams.get(`${name}_base64`);
  if (text !== null && encoded !== null) {
    throw new HttpError(400, "invalid_argument", `give ${name} or ${name}_base64, not both`);
  }
  if (text !== null) return new TextEncoder().encode(text);
  if (encoded !== null) return fromBase64(encoded, `${name}_base64`);
  return undefined;
}

function queryInteger(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null) return undefined;
  if (!/^\d{1,15}$/.test(text)) {
    throw new HttpError(400, "invalid_argument", `${name} must be a whole number, not "${text}"`);
  }
  return Number(text);
}

function queryBoolean(url: URL, name: string): boolean {
  const text = url.searchParams.get(name);
  if (text === null || text === "false" || text === "0") return false;
  if (text === "" || text === "true" || text === "1") return true;
  throw new HttpError(400, "invalid_argument", `${name} must be true or false, not "${text}"`);
}
