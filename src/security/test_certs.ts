/**
 * Certificates made at test time with the `openssl` command (Debian's `openssl` package): a CA,
 * a server certificate for 127.0.0.1 and localhost, an allowed client, a client of the same CA
 * whose common name is not allowed, and a client of a stranger CA. EC P-256 keys, valid for two
 * days, in a fresh temporary directory that `remove()` deletes.
 *
 * Tests call `opensslMissing()` first and are skipped, with the reason printed, where openssl
 * is not installed.
 */

/** Common name of the client certificate the tests allow. */
export const ALLOWED_CN = "basalt-client";
/** Common name of a client certificate signed by the same CA but not allowed. */
export const REFUSED_CN = "intruder";

/** Longest one openssl command may take. */
const OPENSSL_TIMEOUT_MS = 20_000;

/** A certificate and its private key, as file paths. */
export interface CertPair {
  certPath: string;
  keyPath: string;
}

/** A test PKI: paths of every file, and its removal. */
export interface TestPki {
  dir: string;
  caPath: string;
  /** SAN IP:127.0.0.1, DNS:localhost, CN basalt-server. */
  server: CertPair;
  /** Signed by the CA, CN `ALLOWED_CN`. */
  client: CertPair;
  /** Signed by the CA, CN `REFUSED_CN`. */
  intruder: CertPair;
  /** Self-signed (another CA), CN `ALLOWED_CN`: a name that is allowed, from a CA that is not. */
  stranger: CertPair;
  /** Signed by the CA for DNS:elsewhere.example only: a server that is not 127.0.0.1. */
  elsewhere: CertPair;
  remove(): Promise<void>;
}

/** Why certificates cannot be made here, or null when `openssl` runs. */
export async function opensslMissing(): Promise<string | null> {
  try {
    const result = await new Deno.Command("openssl", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return result.success ? null : "`openssl version` failed";
  } catch (error) {
    return `no openssl command (Debian package openssl): ${(error as Error).message}`;
  }
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const result = await new Deno.Command("openssl", {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(OPENSSL_TIMEOUT_MS),
  }).output();
  if (!result.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
  }
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

async function signed(
  dir: string,
  name: string,
  options: { cn: string; san: string },
): Promise<CertPair> {
  await openssl(
    [
      "req",
      ...EC_KEY,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${options.cn}`,
    ],
    dir,
  );
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    `subjectAltName=${options.san}\nbasicConstraints=CA:FALSE\n` +
      "extendedKeyUsage=serverAuth,clientAuth\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    `${name}.pem`,
    "-extfile",
    `${name}.ext`,
  ], dir);
  return { certPath: `${dir}/${name}.pem`, keyPath: `${dir}/${name}.key` };
}

async function selfSigned(dir: string, name: string, cn: string): Promise<CertPair> {
  await openssl(
    ["req", "-x509", ...EC_KEY, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2"]
      .concat(["-subj", `/CN=${cn}`]),
    dir,
  );
  return { certPath: `${dir}/${name}.pem`, keyPath: `${dir}/${name}.key` };
}

/** Makes a fresh test PKI in a new temporary directory. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "basalt_pki_" });
  try {
    const ca = await selfSigned(dir, "ca", "Basalt Test CA");
    return {
      dir,
      caPath: ca.certPath,
      server: await signed(dir, "server", {
        cn: "basalt-server",
        san: "IP:127.0.0.1,DNS:localhost",
      }),
      client: await signed(dir, "client", { cn: ALLOWED_CN, san: `DNS:${ALLOWED_CN}` }),
      intruder: await signed(dir, "intruder", { cn: REFUSED_CN, san: `DNS:${REFUSED_CN}` }),
      stranger: await selfSigned(dir, "stranger", ALLOWED_CN),
      elsewhere: await signed(dir, "elsewhere", { cn: "elsewhere", san: "DNS:elsewhere.example" }),
      remove: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}
