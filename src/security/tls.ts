/**
 * Transport security as TiKV has it (`[security]` `ca-path`, `cert-path`, `key-path`,
 * `cert-allowed-cn`): the files are read and checked once, then turned into grpc-js server and
 * channel credentials and the status server's TLS options.
 *
 * Invariants this module keeps:
 * - TLS is all or nothing: the three paths are all set (TLS, mutual) or all empty (plain text).
 *   Half a configuration is refused by name, never silently downgraded to plain text.
 * - Roots are always explicit. grpc-js would otherwise fill `ca` from
 *   `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (the 219 KB system bundle on these machines), which Deno's
 *   TLS server then sends to every client and every handshake fails (measured under Deno 2.9.6).
 * - Servers require a client certificate signed by the CA (mutual TLS); with `cert-allowed-cn`
 *   set, a certificate whose subject common name is not in the list is refused before the call
 *   reaches any handler: UNAUTHENTICATED on gRPC, 403 on the status server. As in TiKV only the
 *   subject CN is compared, not the subject alternative names.
 * - Clients verify the server's certificate against the CA and the address they dialled (an IP
 *   address against the certificate's IP SANs, a name against its DNS SANs).
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { isIP, type Socket } from "node:net";
import * as tls from "node:tls";
import {
  commonNameAllowed,
  commonNameOf,
  refusalMessage,
  securityProblem,
  TlsConfigError,
  type TlsPaths,
} from "./settings.ts";

export { TlsConfigError, type TlsPaths } from "./settings.ts";

/** A CA, a certificate and its key, read once; used by servers and clients alike. */
export interface TlsIdentity {
  /** PEM of the CA certificate(s) that sign the peers' certificates. */
  readonly ca: Uint8Array;
  /** PEM of this process's certificate chain. */
  readonly cert: Uint8Array;
  /** PEM of this process's private key. */
  readonly key: Uint8Array;
}

function readPem(key: string, path: string, marker: RegExp): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (error) {
    throw new TlsConfigError(key, `cannot read ${path}: ${(error as Error).message}`);
  }
  if (!marker.test(new TextDecoder().decode(bytes))) {
    throw new TlsConfigError(key, `${path} is not a PEM file of the expected kind`);
  }
  return bytes;
}

/**
 * Reads and checks the files named by `paths`; null when they are all empty (plain text).
 * Throws `TlsConfigError` naming the key when a file is missing, is not PEM, or when the key
 * does not belong to the certificate.
 */
export function loadTlsIdentity(paths: TlsPaths): TlsIdentity | null {
  const problem = securityProblem(paths);
  if (problem !== null) throw problem;
  if (paths.caPath === "") return null;
  const certificateMarker = /-----BEGIN CERTIFICATE-----/;
  const ca = readPem("security.ca-path", paths.caPath, certificateMarker);
  const cert = readPem("security.cert-path", paths.certPath, certificateMarker);
  const key = readPem("security.key-path", paths.keyPath, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new TlsConfigError("security.cert-path", `unreadable certificate: ${error}`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(Buffer.from(key)));
  } catch (error) {
    throw new TlsConfigError("security.key-path", `unreadable private key: ${error}`);
  }
  if (!matches) {
    throw new TlsConfigError(
      "security.key-path",
      `${paths.keyPath} is not the private key of ${paths.certPath}`,
    );
  }
  return { ca, cert, key };
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);

/** Options of `serverCredentials`. */
export interface ServerTlsOptions {
  /** TiKV's `cert-allowed-cn`: empty = any certificate the CA signed. */
  allowedCommonNames: readonly string[];
  /** Called once per refused call, with the peer's common name. */
  onRefused?: (cn: string | null) => void;
}

/**
 * An interceptor that ends every call from a peer whose certificate CN is not allowed with
 * UNAUTHENTICATED before the call is started, so no handler sees it (TiKV checks each call the
 * same way).
 */
function commonNameChecker(options: ServerTlsOptions): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        const peer = call.getAuthContext().sslPeerCertificate;
        const cn = commonNameOf(peer);
        if (peer === undefined || !commonNameAllowed(cn, options.allowedCommonNames)) {
          options.onRefused?.(cn);
          call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: refusalMessage(cn) });
          return;
        }
        next();
      },
    });
}

/**
 * gRPC server credentials: plain text without an identity; otherwise TLS that requires a
 * client certificate signed by the CA and, when `allowedCommonNames` is not empty, refuses
 * calls from other common names.
 */
export function serverCredentials(
  identity: TlsIdentity | null,
  options: ServerTlsOptions,
): grpc.ServerCredentials {
  if (identity === null) return grpc.ServerCredentials.createInsecure();
  const ssl = grpc.ServerCredentials.createSsl(
    toBuffer(identity.ca),
    [{ private_key: toBuffer(identity.key), cert_chain: toBuffer(identity.cert) }],
    true,
  );
  return grpc.experimental.createServerCredentialsWithInterceptors(ssl, [
    commonNameChecker(options),
  ]);
}

/**
 * TLS channel credentials that verify the server against the CA and the dialled host.
 *
 * Why not `grpc.credentials.createSsl`: grpc-js always sets the TLS `servername` to the target
 * host, and Deno 2.9.6's `tls.connect` throws on an IP address there ("options.servername must
 * not be an IP address"), so no channel to `127.0.0.1:port` could connect. This connector
 * leaves `servername` unset for IP addresses (no SNI, as RFC 6066 §3 asks) and checks the
 * certificate against the address itself.
 */
class TlsChannelCredentials extends grpc.ChannelCredentials {
  readonly #context: tls.SecureContext;

  constructor(identity: TlsIdentity) {
    super();
    this.#context = tls.createSecureContext({
      ca: toBuffer(identity.ca),
      cert: toBuffer(identity.cert),
      key: toBuffer(identity.key),
    });
  }

  override _isSecure(): boolean {
    return true;
  }

  override _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(
    channelTarget: Parameters<grpc.ChannelCredentials["_createSecureConnector"]>[0],
    _options: grpc.ChannelOptions,
    callCredentials?: grpc.CallCredentials,
  ): ReturnType<grpc.ChannelCredentials["_createSecureConnector"]> {
    const target = channelTarget.path.replace(/^\//, "");
    const host = grpc.experimental.splitHostPort(target)?.host ?? target;
    const context = this.#context;
    return {
      connect: (socket: Socket) =>
        new Promise((resolve, reject) => {
          const secured = tls.connect({
            socket,
            secureContext: context,
            host,
            servername: isIP(host) === 0 ? host : undefined,
            ALPNProtocols: ["h2"],
            rejectUnauthorized: true,
          }, () => {
            if (!secured.authorized) return reject(secured.authorizationError);
            resolve({ socket: secured, secure: true });
          });
          secured.on("error", reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials ?? grpc.CallCredentials.createEmpty(),
      destroy: () => {},
    };
  }
}

const channelCredentialsOf = new WeakMap<TlsIdentity, grpc.ChannelCredentials>();

/**
 * Channel credentials for a client: plain text without an identity, else mutual TLS. One
 * object per identity, so every channel of a client shares one secure context.
 */
export function channelCredentials(identity: TlsIdentity | null): grpc.ChannelCredentials {
  if (identity === null) return grpc.credentials.createInsecure();
  let credentials = channelCredentialsOf.get(identity);
  if (credentials === undefined) {
    credentials = new TlsChannelCredentials(identity);
    channelCredentialsOf.set(identity, credentials);
  }
  return credentials;
}
