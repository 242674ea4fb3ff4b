/**
 * A small HTTP/1.1 server for one connection, answering through the `(Request) => Response`
 * handler `Deno.serve` takes, with the deadlines `Deno.serve` lacks.
 *
 * Why not `Deno.serve`: measured on Deno 2.9.6, it keeps a connection that sends nothing, one
 * that sends a header line every 5 s (slowloris), and an idle keep-alive connection open for as
 * long as the client likes (95 s observed, no end); it has no timeout options. `node:http`'s
 * `headersTimeout` is not honoured either. The status server answers a few small GETs, so a
 * plain reader of request heads is enough here:
 * - idle: a connection with no request under way for `idleTimeoutMs` is closed (from accept,
 *   and after each answer);
 * - header read: once the first byte of a request arrives, its head (request line and headers,
 *   at most `maxHeaderBytes`, else 431) must be complete within `headerTimeoutMs`;
 * - write: an answer must be taken by the client within `headerTimeoutMs`, else the connection
 *   is closed (a client that never reads holds no more than one answer);
 * - request bodies are never read: a request that has one is answered and the connection closed.
 *
 * Invariants: at most one request of a connection is in the handler at a time; every path ends
 * with the connection closed and its timer cleared.
 */

/** Deadlines and sizes of {@link serveHttp1}. */
export interface Http1Options {
  /** Closes a connection with no request under way for this long; 0 = never. */
  idleTimeoutMs: number;
  /** Longest from a request's first byte to the end of its head, and longest for a write. */
  headerTimeoutMs: number;
  /** Largest request head; a longer one gets 431. */
  maxHeaderBytes: number;
  /** `host:port` used to build request URLs. */
  authority: string;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
const HEAD_END = new Uint8Array([13, 10, 13, 10]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const READ_CHUNK_BYTES = 4096;

function indexOfHeadEnd(bytes: Uint8Array, from: number): number {
  for (let i = Math.max(0, from - 3); i + 4 <= bytes.length; i++) {
    if (
      bytes[i] === HEAD_END[0] && bytes[i + 1] === HEAD_END[1] &&
      bytes[i + 2] === HEAD_END[2] && bytes[i + 3] === HEAD_END[3]
    ) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/** A parsed request head, or the status to refuse it with. */
type Head =
  | { ok: true; method: string; target: string; headers: Headers; keepAlive: boolean }
  | { ok: false; status: number; message: string; allow?: string };

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const parts = lines[0]!.split(" ");
  const [method, target, version] = parts;
  if (
    parts.length !== 3 || !TOKEN.test(method!) || !target!.startsWith("/") ||
    !/^HTTP\/1\.[01]$/.test(version!)
  ) return { ok: false, status: 400, message: "malformed request line" };
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) {
      return { ok: false, status: 400, message: "malformed header" };
    }
    try {
      headers.append(name, line.slice(colon + 1).trim());
    } catch {
      return { ok: false, status: 400, message: `malformed header ${name}` };
    }
  }
  const connection = (headers.get("connection") ?? "").toLowerCase();
  const hasBody = headers.has("transfer-encoding") ||
    Number(headers.get("content-length") ?? "0") !== 0;
  const keepAlive = !hasBody &&
    (version === "HTTP/1.1" ? connection !== "close" : connection === "keep-alive");
  return { ok: true, method: method!, target: target!, headers, keepAlive };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function encodeResponse(response: Response, keepAlive: boolean): Promise<Uint8Array> {
  const body = new Uint8Array(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? "Status"}\r\n`;
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") head += `${name}: ${value}\r\n`;
  });
  head += `content-length: ${body.length}\r\n`;
  head += keepAlive ? "\r\n" : "connection: close\r\n\r\n";
  return concat(new TextEncoder().encode(head), body);
}

function refusal(head: Extract<Head, { ok: false }>): Response {
  const headers: Record<string, string> = { "content-type": "text/plain" };
  if (head.allow !== undefined) headers.allow = head.allow;
  return new Response(`${head.message}\n`, { status: head.status, headers });
}

/**
 * Serves HTTP/1.1 requests on `conn` until the client closes, a deadline passes or a request
 * asks to close; always closes `conn`.
 */
export async function serveHttp1(
  conn: Deno.Conn,
  handler: (request: Request) => Response | Promise<Response>,
  options: Http1Options,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    try {
      conn.close();
    } catch { /* closed already */ }
  };
  /** Closes the connection after `ms` unless re-armed first; 0 disarms. */
  const arm = (ms: number) => {
    clearTimeout(timer);
    timer = ms > 0 ? setTimeout(close, ms) : undefined;
  };
  let buffered: Uint8Array = new Uint8Array(0);
  const chunk = new Uint8Array(READ_CHUNK_BYTES);
  try {
    for (;;) {
      arm(buffered.length > 0 ? options.headerTimeoutMs : options.idleTimeoutMs);
      let end = indexOfHeadEnd(buffered, 0);
      while (end < 0 && buffered.length <= options.maxHeaderBytes) {
        const read = await conn.read(chunk);
        if (read === null) return;
        if (buffered.length === 0) arm(options.headerTimeoutMs);
        const from = buffered.length;
        buffered = concat(buffered, chunk.subarray(0, read));
        end = indexOfHeadEnd(buffered, from);
      }
      const head: Head = end < 0 || end > options.maxHeaderBytes
        ? { ok: false, status: 431, message: "request head too large" }
        : parseHead(new TextDecoder().decode(buffered.subarray(0, end)));
      buffered = end < 0 ? new Uint8Array(0) : buffered.slice(end + HEAD_END.length);
      arm(options.headerTimeoutMs); // now the write deadline
      const keepAlive = head.ok && head.keepAlive;
      const response = await answer(head, handler, options.authority);
      await writeAll(conn, await encodeResponse(response, keepAlive));
      if (!keepAlive) return;
    }
  } catch {
    // A reset, or the connection closed by a deadline: nothing more to say to this client.
  } finally {
    clearTimeout(timer);
    close();
  }
}

async function answer(
  head: Head,
  handler: (request: Request) => Response | Promise<Response>,
  authority: string,
): Promise<Response> {
  if (!head.ok) return refusal(head);
  let request: Request;
  try {
    request = new Request(`http://${authority}${head.target}`, {
      method: head.method,
      headers: head.headers,
    });
  } catch {
    // `Request` refuses CONNECT, TRACE and TRACK: methods the status server does not serve.
    return refusal({ ok: false, status: 405, message: "method not allowed", allow: "GET" });
  }
  try {
    return await handler(request);
  } catch (error) {
    return new Response(`internal error: ${error}\n`, { status: 500 });
  }
}
