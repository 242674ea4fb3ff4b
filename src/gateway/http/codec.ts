/**
 * Bytes in and out of the HTTP API: keys in paths (percent-encoded bytes), keys and values in
 * JSON (`key` as UTF-8 text, or `key_base64` when the bytes are not UTF-8; the same for
 * `value`), and scan cursors (base64url). Every malformed input is an `HttpError` 400 with a
 * code of its own (`invalid_key`, `invalid_base64`, `invalid_json`, `invalid_argument`).
 */
import { HttpError } from "./errors.ts";

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The UTF-8 text of `bytes`, or null when they are not valid UTF-8. */
export function utf8Text(bytes: Uint8Array): string | null {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/** Standard base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The bytes of standard base64 `text` (padded); 400 `invalid_base64` naming `field` otherwise. */
export function fromBase64(text: string, field: string): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new HttpError(400, "invalid_base64", `${field} is not valid base64 (standard, padded)`, {
      field,
    });
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Base64url (no padding) of `bytes`: a scan cursor. */
export function toCursor(bytes: Uint8Array): string {
  return toBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The bytes of cursor `text`; 400 `invalid_base64` otherwise. */
export function fromCursor(text: string): Uint8Array {
  if (!BASE64URL.test(text) || text.length % 4 === 1) {
    throw new HttpError(400, "invalid_base64", "cursor is not valid base64url", {
      field: "cursor",
    });
  }
  const padded = text.replaceAll("-", "+").replaceAll("_", "/") +
    "=".repeat((4 - text.length % 4) % 4);
  return fromBase64(padded, "cursor");
}

/**
 * The bytes of a percent-encoded path segment: `%XX` is a byte, any other character its UTF-8
 * bytes (so `%FF` reaches keys that are not UTF-8). 400 `invalid_key` for a broken escape.
 */
export function percentDecode(segment: string): Uint8Array {
  const out: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < segment.length;) {
    if (segment[i] === "%") {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        throw new HttpError(400, "invalid_key", `bad percent-escape at offset ${i} of the key`);
      }
      out.push(parseInt(hex, 16));
      i += 3;
      continue;
    }
    const codePoint = segment.codePointAt(i)!;
    const char = String.fromCodePoint(codePoint);
    out.push(...encoder.encode(char));
    i += char.length;
  }
  return Uint8Array.from(out);
}

/** `{ [name]: text }` when `bytes` are UTF-8, else `{ [name_base64]: base64 }`. */
export function bytesField(name: string, bytes: Uint8Array): Record<string, string> {
  const text = utf8Text(bytes);
  return text !== null ? { [name]: text } : { [`${name}_base64`]: toBase64(bytes) };
}

/**
 * The bytes of field `name` of JSON object `body` (`name` as text, or `name_base64`); null when
 * neither is there. 400 when both are, or when one is not a string.
 */
export function readBytesField(
  body: Record<string, unknown>,
  name: string,
  where: string,
): Uint8Array | null {
  const text = body[name];
  const encoded = body[`${name}_base64`];
  if (text !== undefined && encoded !== undefined) {
    throw new HttpError(
      400,
      "invalid_argument",
      `${where}: give ${name} or ${name}_base64, not both`,
    );
  }
  if (text !== undefined) {
    if (typeof text !== "string") {
      throw new HttpError(400, "invalid_argument", `${where}: ${name} must be a string`);
    }
    return new TextEncoder().encode(text);
  }
  if (encoded !== undefined) {
    if (typeof encoded !== "string") {
      throw new HttpError(400, "invalid_argument", `${where}: ${name}_base64 must be a string`);
    }
    return fromBase64(encoded, `${where}.${name}_base64`);
  }
  return null;
}

/** Like `readBytesField`, but the field is required. */
export function requireBytesField(
  body: Record<string, unknown>,
  name: string,
  where: string,
): Uint8Array {
  const bytes = readBytesField(body, name, where);
  if (bytes === null) {
    throw new HttpError(
      400,
      "invalid_argument",
      `${where}: ${name} (or ${name}_base64) is required`,
    );
  }
  return bytes;
}

/** `value` as a JSON object; 400 `invalid_argument` naming `where` otherwise. */
export function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "invalid_argument", `${where} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** An optional TTL field: a whole number of seconds, or null/absent. */
export function readTtl(value: unknown, where: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new HttpError(
      400,
      "invalid_argument",
      `${where}: ttl_seconds must be a whole number >= 0`,
    );
  }
  return value;
}
