/**
 * An HTTPS server with mutual TLS for the status server, answering through the same
 * `(Request) => Response` handler that `Deno.serve` takes.
 *
 * Why not `Deno.serve`: in Deno 2.9.6 its TLS options are a certificate and a key only; it can
 * neither ask for nor verify a client certificate, so it cannot keep TiKV's rule that the status
 * server, like gRPC, serves only clients whose certificate the CA signed (and, with
 * `cert-allowed-cn`, whose common name is listed). `node:https` can (`requestCert`,
 * `rejectUnauthorized`), measured here.
 *
 * A client with no certificate or one the CA did not sign fails in the handshake; a signed
 * certificate with a common name not allowed gets 403 before the handler runs.
 */
import { Buffer } from "node:buffer";
import * as https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { commonNameAllowed, commonNameOf, refusalMessage } from "./settings.ts";
import type { TlsIdentity } from "./tls.ts";

/** Options of `serveHttps`. */
export interface HttpsServeOptions {
  hostname: string;
  /** 0 = any free port. */
  port: number;
  identity: TlsIdentity;
  /** TiKV's `cert-allowed-cn`: empty = any certificate the CA signed. */
  allowedCommonNames: readonly string[];
}

/** A running HTTPS server. */
export interface HttpsServer {
  port: number;
  shutdown(): Promise<void>;
}

function toRequest(incoming: IncomingMessage, authority: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (typeof value === "string") headers.set(name, value);
    else if (Array.isArray(value)) { for (const item of value) headers.append(name, item); }
  }
  // The status server answers GET and HEAD only: no request body is read.
  return new Request(`https://${authority}${incoming.url ?? "/"}`, {
    method: incoming.method,
    headers,
  });
}

async function writeResponse(outgoing: ServerResponse, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => headers[name] = value);
  outgoing.writeHead(response.status, headers);
  outgoing.end(body);
}

/** Serves `handler` over HTTPS with mutual TLS; resolves once listening. */
export function serveHttps(
  options: HttpsServeOptions,
  handler: (request: Request) => Response | Promise<Response>,
): Promise<HttpsServer> {
  const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes);
  const server = https.createServer({
    ca: toBuffer(options.identity.ca),
    cert: toBuffer(options.identity.cert),
    key: toBuffer(options.identity.key),
    requestCert: true,
    rejectUnauthorized: true,
  }, (incoming, outgoing) => {
    const socket = incoming.socket as TLSSocket;
    const cn = commonNameOf(socket.getPeerCertificate());
    if (!socket.authorized || !commonNameAllowed(cn, options.allowedCommonNames)) {
      outgoing.writeHead(403, { "content-type": "text/plain" });
      outgoing.end(refusalMessage(cn) + "\n");
      return;
    }
    const authority = `${options.hostname}:${(server.address() as { port: number }).port}`;
    Promise.resolve()
      .then(() => handler(toRequest(incoming, authority)))
      .then((response) => writeResponse(outgoing, response))
      .catch((error) => {
        outgoing.writeHead(500, { "content-type": "text/plain" });
        outgoing.end(`internal error: ${error}\n`);
      });
  });
  // A refused handshake is the client's failure, reported to it; it must not end the process.
  server.on("tlsClientError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as { port: number }).port,
        shutdown: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
