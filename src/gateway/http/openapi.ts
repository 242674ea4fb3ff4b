/**
 * The OpenAPI 3.1 document of the HTTP API, served at `/v1/openapi.json`. Written by hand next
 * to the routes it describes (`kv_routes.ts`, `txn_route.ts`); a test checks that every route
 * the gateway serves is in it and that its limits are the constants the gateway enforces.
 */
import {
  HTTP_MAX_BODY_BYTES,
  HTTP_TXN_MAX_OPS,
  KV_MAX_KEY_BYTES,
  KV_MAX_TTL_SECONDS,
  KV_MAX_VALUE_BYTES,
  KV_SCAN_DEFAULT_LIMIT,
  KV_SCAN_MAX_LIMIT,
} from "../../constants.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorAnswer = (description: string) => ({
  description,
  content: { "application/json": { schema: ref("Error") } },
});
const keyParameter = {
  name: "key",
  in: "path",
  required: true,
  description: `The key, percent-encoded bytes (%FF reaches keys that are not UTF-8); ` +
    `1 to ${KV_MAX_KEY_BYTES} bytes.`,
  schema: { type: "string" },
};
const bytesParameter = (name: string, description: string) => [
  { name, in: "query", description: `${description} (UTF-8 text).`, schema: { type: "string" } },
  {
    name: `${name}_base64`,
    in: "query",
    description: `${description} (standard base64), instead of \`${name}\`.`,
    schema: { type: "string", format: "byte" },
  },
];
/** A key or value: `name` as UTF-8 text, or `name_base64`. */
const bytesProperties = (name: string) => ({
  [name]: { type: "string", description: `UTF-8 text (absent when not UTF-8)` },
  [`${name}_base64`]: { type: "string", format: "byte", description: "base64 of the bytes" },
});
const common = {
  400: errorAnswer("Malformed request (invalid_json, invalid_base64, invalid_argument, …)"),
  413: errorAnswer(`Body over ${HTTP_MAX_BODY_BYTES} bytes, or value over ${KV_MAX_VALUE_BYTES}`),
  503: errorAnswer("The store cannot be reached (unavailable)"),
  504: errorAnswer("The store did not answer in time (timeout)"),
};

/** The document. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "Basalt HTTP API",
      version: "1",
      description: "Keys and values over Basalt's transactions. Keys and values are bytes: in " +
        "JSON as UTF-8 text (`key`, `value`) or, when not UTF-8, base64 (`key_base64`, " +
        "`value_base64`). Errors are JSON with a stable `code`.",
    },
    paths: {
      "/v1/kv/{key}": {
        parameters: [keyParameter],
        get: {
          summary: "Read a key",
          parameters: [{
            name: "format",
            in: "query",
            schema: { enum: ["bytes", "json"] },
            description: "json: answer an Entry (also with Accept: application/json)",
          }],
          responses: {
            200: {
              description: "The value's bytes (TTL left in Basalt-Ttl-Seconds), or an Entry",
              content: {
                "application/octet-stream": { schema: { type: "string", format: "binary" } },
                "application/json": { schema: ref("Entry") },
              },
            },
            404: errorAnswer("No such key, or it expired (key_not_found)"),
            ...common,
          },
        },
        put: {
          summary: "Write a key",
          parameters: [{
            name: "ttl_seconds",
            in: "query",
            schema: { type: "integer", minimum: 0, maximum: KV_MAX_TTL_SECONDS },
            description: "Expiry, for a body of raw bytes",
          }],
          requestBody: {
            required: true,
            content: {
              "application/octet-stream": { schema: { type: "string", format: "binary" } },
              "application/json": { schema: ref("PutBody") },
            },
          },
          responses: { 204: { description: "Written" }, ...common },
        },
        delete: {
          summary: "Delete a key (absent or not)",
          responses: { 204: { description: "Deleted" }, ...common },
        },
      },
      "/v1/kv": {
        get: {
          summary: "Scan a range, one page at a time",
          parameters: [
            ...bytesParameter("prefix", "Only keys starting with these bytes"),
            ...bytesParameter("start", "First key, inclusive"),
            ...bytesParameter("end", "End key, exclusive"),
            {
              name: "limit",
              in: "query",
              schema: {
                type: "integer",
                minimum: 1,
                maximum: KV_SCAN_MAX_LIMIT,
                default: KV_SCAN_DEFAULT_LIMIT,
              },
            },
            { name: "reverse", in: "query", schema: { type: "boolean", default: false } },
            {
              name: "cursor",
              in: "query",
              schema: { type: "string" },
              description: "The cursor of the previous page (base64url)",
            },
          ],
          responses: {
            200: {
              description: "A page",
              content: { "application/json": { schema: ref("Page") } },
            },
            ...common,
          },
        },
      },
      "/v1/txn": {
        post: {
          summary: "Compare, read and write as one transaction",
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("TxnRequest") } },
          },
          responses: {
            200: {
              description: "Committed (or, without writes, read at one snapshot)",
              content: { "application/json": { schema: ref("TxnResponse") } },
            },
            409: errorAnswer(
              "A compare did not hold (compare_failed) or conflicts persisted " +
                "(write_conflict); nothing was written",
            ),
            ...common,
          },
        },
      },
      "/v1/openapi.json": {
        get: { summary: "This document", responses: { 200: { description: "OpenAPI 3.1" } } },
      },
    },
    components: {
      schemas: {
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: { type: "string" }, message: { type: "string" } },
            },
          },
        },
        Entry: {
          type: "object",
          properties: {
            ...bytesProperties("key"),
            ...bytesProperties("value"),
            ttl_seconds: { type: ["integer", "null"], description: "TTL left; null: none" },
          },
        },
        PutBody: {
          type: "object",
          properties: {
            ...bytesProperties("value"),
            ttl_seconds: { type: "integer", minimum: 0, maximum: KV_MAX_TTL_SECONDS },
          },
        },
        Page: {
          type: "object",
          properties: {
            items: { type: "array", items: ref("Entry") },
            cursor: { type: ["string", "null"], description: "Pass as `cursor` for the next page" },
          },
        },
        KeyRef: { type: "object", properties: bytesProperties("key") },
        TxnRequest: {
          type: "object",
          description: `At most ${HTTP_TXN_MAX_OPS} operations in all`,
          additionalProperties: false,
          properties: {
            compare: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  ...bytesProperties("key"),
                  ...bytesProperties("value"),
                  exists: { type: "boolean" },
                },
              },
            },
            reads: { type: "array", items: ref("KeyRef") },
            puts: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  ...bytesProperties("key"),
                  ...bytesProperties("value"),
                  ttl_seconds: { type: "integer", minimum: 0 },
                },
              },
            },
            deletes: { type: "array", items: ref("KeyRef") },
          },
        },
        TxnResponse: {
          type: "object",
          properties: {
            committed: { type: "boolean" },
            reads: {
              type: "array",
              items: { allOf: [ref("Entry"), { properties: { found: { type: "boolean" } } }] },
            },
          },
        },
      },
    },
  };
}
