/**
 * Request bodies, read with their bounds: at most `maxBytes` (a `Content-Length` above it is
 * refused before anything is read; a body that grows past it while streaming is cut off), both
 * answered 413 `body_too_large`; the whole body within `timeoutMs` (else 408 `body_timeout`).
 */
import { HttpError } from "./errors.ts";

/** How a body is read. */
export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "body_too_large", `request body over the limit of ${maxBytes} bytes`, {
    maxBytes,
  });
}

/** The whole body of `request` (empty when it has none). */
export async function readBody(request: Request, limits: BodyLimits): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limits.maxBytes) throw tooLarge(limits.maxBytes);
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), limits.timeoutMs);
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), late]);
      if (next === "late") {
        throw new HttpError(
          408,
          "body_timeout",
          `request body not received within ${limits.timeoutMs} ms`,
        );
      }
      if (next.done) break;
      total += next.value.length;
      if (total > limits.maxBytes) throw tooLarge(limits.maxBytes);
      chunks.push(next.value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}

/** The body of `request` parsed as JSON (400 `invalid_json` when it is not). */
export async function readJson(request: Request, limits: BodyLimits): Promise<unknown> {
  const bytes = await readBody(request, limits);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(
      400,
      "invalid_json",
      `request body is not JSON: ${(error as Error).message}`,
    );
  }
}
