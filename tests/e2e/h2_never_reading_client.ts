/**
 * A raw HTTP/2 client that opens one gRPC stream, sends messages on it as fast as the server's
 * flow-control window allows, and never reads a byte of its answers: it grants the server no
 * window (RFC 9113 §6.9: no WINDOW_UPDATE is ever sent), so the server may send it 65,535 bytes
 * and must hold every later answer itself. It keeps the connection healthy otherwise — SETTINGS
 * and PING are acknowledged (§6.5, §6.7) — so keepalive does not end it.
 *
 * grpc-js's own client cannot play this part: measured on Deno 2.9.6, a paused grpc-js stream
 * still takes in answers of a few hundred KiB per message, so the client, not the server, holds
 * them. HPACK is written as literals without indexing (RFC 7541 §6.2.2), enough for one request.
 */

const FRAME_DATA = 0;
const FRAME_HEADERS = 1;
const FRAME_SETTINGS = 4;
const FRAME_PING = 6;
const FRAME_GOAWAY = 7;
const FRAME_WINDOW_UPDATE = 8;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const DEFAULT_WINDOW = 65_535;
const STREAM_ID = 1;

function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(9 + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, payload.length << 8 | type);
  bytes[4] = flags;
  view.setUint32(5, streamId);
  bytes.set(payload, 9);
  return bytes;
}

function literalHeaders(headers: [string, string][]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    out.push(0x00, name.length, ...new TextEncoder().encode(name));
    out.push(value.length, ...new TextEncoder().encode(value));
  }
  return new Uint8Array(out);
}

/** The never-reading client; `close()` leaves (closes the TCP connection). */
export class NeverReadingClient {
  #conn: Deno.TcpConn;
  #connectionWindow = DEFAULT_WINDOW;
  #streamWindow = DEFAULT_WINDOW;
  #windowWaiters: (() => void)[] = [];
  #closed = false;
  /** Answer bytes the server managed to send (at most its initial window). */
  receivedDataBytes = 0;
  /** Whether the server sent GOAWAY. */
  goaway = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(addr: string, path: string): Promise<NeverReadingClient> {
    const [hostname, port] = [addr.slice(0, addr.lastIndexOf(":")), addr.split(":").at(-1)!];
    const conn = await Deno.connect({ hostname, port: Number(port) });
    const client = new NeverReadingClient(conn);
    const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    await client.#write(preface);
    await client.#write(frame(FRAME_SETTINGS, 0, 0, new Uint8Array(0)));
    await client.#write(frame(
      FRAME_HEADERS,
      FLAG_END_HEADERS,
      STREAM_ID,
      literalHeaders([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", path],
        [":authority", addr],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ]),
    ));
    client.#readFrames();
    return client;
  }

  /**
   * Sends `message` (one gRPC message) `count` times, each when the server's window allows;
   * gives up once the window has been shut for `stallMs`. Returns how many were sent.
   */
  async send(message: Uint8Array, count: number, stallMs: number): Promise<number> {
    const payload = new Uint8Array(5 + message.length);
    new DataView(payload.buffer).setUint32(1, message.length);
    payload.set(message, 5);
    const bytes = frame(FRAME_DATA, 0, STREAM_ID, payload);
    for (let sent = 0; sent < count; sent++) {
      while (Math.min(this.#connectionWindow, this.#streamWindow) < payload.length) {
        if (this.#closed || !await this.#windowGrows(stallMs)) return sent;
      }
      this.#connectionWindow -= payload.length;
      this.#streamWindow -= payload.length;
      await this.#write(bytes);
    }
    return count;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed by the server */ }
    for (const wake of this.#windowWaiters.splice(0)) wake();
  }

  #windowGrows(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#windowWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Reads frame headers to learn the windows and answer SETTINGS and PING; drops DATA. */
  async #readFrames(): Promise<void> {
    let buffer = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await this.#conn.read(chunk);
        if (read === null) break;
        const joined = new Uint8Array(buffer.length + read);
        joined.set(buffer);
        joined.set(chunk.subarray(0, read), buffer.length);
        buffer = joined;
        while (buffer.length >= 9) {
          const view = new DataView(buffer.buffer, buffer.byteOffset);
          const length = view.getUint32(0) >>> 8;
          if (buffer.length < 9 + length) break;
          await this.#onFrame(buffer[3]!, buffer[4]!, view.getUint32(5) & 0x7fffffff, {
            payload: buffer.slice(9, 9 + length),
          });
          buffer = buffer.slice(9 + length);
        }
      }
    } catch { /* closed */ }
    this.close();
  }

  async #onFrame(
    type: number,
    flags: number,
    streamId: number,
    { payload }: { payload: Uint8Array },
  ): Promise<void> {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    if (type === FRAME_DATA) {
      this.receivedDataBytes += payload.length;
    } else if (type === FRAME_SETTINGS && (flags & FLAG_ACK) === 0) {
      for (let at = 0; at + 6 <= payload.length; at += 6) {
        if (view.getUint16(at) === SETTINGS_INITIAL_WINDOW_SIZE) {
          this.#streamWindow += view.getUint32(at + 2) - DEFAULT_WINDOW;
        }
      }
      await this.#write(frame(FRAME_SETTINGS, FLAG_ACK, 0, new Uint8Array(0)));
    } else if (type === FRAME_PING && (flags & FLAG_ACK) === 0) {
      await this.#write(frame(FRAME_PING, FLAG_ACK, 0, payload));
    } else if (type === FRAME_WINDOW_UPDATE) {
      const increment = view.getUint32(0) & 0x7fffffff;
      if (streamId === 0) this.#connectionWindow += increment;
      else if (streamId === STREAM_ID) this.#streamWindow += increment;
      for (const wake of this.#windowWaiters.splice(0)) wake();
    } else if (type === FRAME_GOAWAY) {
      this.goaway = true;
    }
  }
}
