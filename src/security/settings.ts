/**
 * What the `[security]` section says, checked without touching a file or the network: the
 * all-or-nothing rule of the three paths, and TiKV's `cert-allowed-cn` rule. Imports nothing
 * but types, so the configuration loader and the launcher (`scripts/serve.ts`) can use it
 * without loading grpc-js.
 */

/** The `[security]` paths; all empty means plain text. */
export interface TlsPaths {
  caPath: string;
  certPath: string;
  keyPath: string;
}

/** A security setting that cannot be used; `key` is its TOML name or flag. */
export class TlsConfigError extends Error {
  constructor(readonly key: string, readonly reason: string) {
    super(`invalid security configuration: ${key}: ${reason}`);
    this.name = "TlsConfigError";
  }
}

const PATH_KEYS = [["caPath", "ca-path"], ["certPath", "cert-path"], [
  "keyPath",
  "key-path",
]] as const;

/** Why `paths` (with `allowedCommonNames`) cannot be used, or null when they can. */
export function securityProblem(
  paths: TlsPaths,
  allowedCommonNames: readonly string[] = [],
): TlsConfigError | null {
  const set = PATH_KEYS.filter(([field]) => paths[field] !== "");
  if (set.length !== 0 && set.length !== PATH_KEYS.length) {
    const missing = PATH_KEYS.filter(([field]) => paths[field] === "").map(([, key]) => key);
    return new TlsConfigError(
      `security.${missing[0]}`,
      `ca-path, cert-path and key-path are set together or not at all (missing: ${
        missing.join(", ")
      })`,
    );
  }
  if (set.length === 0 && allowedCommonNames.length !== 0) {
    return new TlsConfigError(
      "security.cert-allowed-cn",
      "needs ca-path, cert-path and key-path (common names are checked only under TLS)",
    );
  }
  return null;
}

/** The subject common name of a peer certificate as node:tls reports it, or null. */
export function commonNameOf(certificate: { subject?: unknown } | null | undefined): string | null {
  const subject = certificate?.subject as Record<string, unknown> | undefined;
  const cn = subject?.CN;
  if (typeof cn === "string") return cn;
  // A subject with several CN attributes reports an array; TiKV takes the first (OpenSSL's).
  if (Array.isArray(cn) && typeof cn[0] === "string") return cn[0];
  return null;
}

/**
 * Whether a peer whose certificate has common name `cn` may talk to this server: any
 * CA-signed peer when `allowed` is empty, else only the names listed (TiKV's
 * `cert-allowed-cn`).
 */
export function commonNameAllowed(cn: string | null, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  return cn !== null && allowed.includes(cn);
}

/** The refusal text of a peer whose common name is not allowed. */
export function refusalMessage(cn: string | null): string {
  return `client certificate common name ${
    cn === null ? "(none)" : `"${cn}"`
  } is not in security.cert-allowed-cn`;
}
