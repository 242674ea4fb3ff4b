/**
 * Transport security in one process: a grpc-js server with `serverCredentials` and clients with
 * `channelCredentials`, over certificates made at test time (`test_certs.ts`). Every refusal is
 * checked to happen before the handler runs (the handler counts its calls).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { bytesMethod } from "../util/grpc_bytes.ts";
import { serveHttps } from "./https_server.ts";
import { commonNameAllowed, commonNameOf, securityProblem } from "./settings.ts";
import {
  ALLOWED_CN,
  type CertPair,
  makeTestPki,
  opensslMissing,
  REFUSED_CN,
  type TestPki,
} from "./test_certs.ts";
import {
  channelCredentials,
  loadTlsIdentity,
  serverCredentials,
  TlsConfigError,
  type TlsIdentity,
} from "./tls.ts";

const NO_OPENSSL = await opensslMissing();
if (NO_OPENSSL !== null) console.log(`TLS tests skipped: ${NO_OPENSSL}`);
const TLS = { ignore: NO_OPENSSL !== null, sanitizeOps: false, sanitizeResources: false };
const CALL_TIMEOUT_MS = 5_000;

const identityOf = (pki: TestPki, pair: CertPair, caPath = pki.caPath): TlsIdentity =>
  loadTlsIdentity({ caPath, certPath: pair.certPath, keyPath: pair.keyPath })!;

/** An echo server on 127.0.0.1 with the credentials of `identity`; counts the calls served. */
async function echoServer(identity: TlsIdentity | null, allowedCommonNames: string[]) {
  const server = new grpc.Server();
  const served = { calls: 0 };
  server.addService({ Echo: bytesMethod("/test.Echo/Echo") }, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      served.calls++;
      callback(null, call.request);
    },
  });
  const credentials = serverCredentials(identity, { allowedCommonNames });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      credentials,
      (error, bound) => error ? reject(error) : resolve(bound),
    )
  );
  return { port, served, close: () => server.forceShutdown() };
}

/** One echo call; resolves with "ok" or the gRPC status code and details of the failure. */
function echo(
  address: string,
  credentials: grpc.ChannelCredentials,
): Promise<{ ok: true } | { ok: false; code: number; details: string }> {
  const client = new grpc.Client(address, credentials);
  return new Promise<{ ok: true } | { ok: false; code: number; details: string }>((resolve) => {
    client.makeUnaryRequest(
      "/test.Echo/Echo",
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      Buffer.from("ping"),
      { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error, response) => {
        if (error) resolve({ ok: false, code: error.code, details: error.details });
        else {
          assert.equal(response!.toString(), "ping");
          resolve({ ok: true });
        }
      },
    );
  }).finally(() => client.close());
}

Deno.test("securityProblem(): the three paths go together, and cert-allowed-cn needs them", () => {
  assert.equal(securityProblem({ caPath: "", certPath: "", keyPath: "" }), null);
  assert.equal(securityProblem({ caPath: "a", certPath: "b", keyPath: "c" }, ["x"]), null);
  const half = securityProblem({ caPath: "ca.pem", certPath: "", keyPath: "" });
  assert.equal(half?.key, "security.cert-path");
  assert.match(half!.reason, /missing: cert-path, key-path/);
  const names = securityProblem({ caPath: "", certPath: "", keyPath: "" }, ["tikv"]);
  assert.equal(names?.key, "security.cert-allowed-cn");
});

Deno.test("commonNameAllowed(): empty list allows any signed peer; else only names listed", () => {
  assert.equal(commonNameAllowed("anyone", []), true);
  assert.equal(commonNameAllowed(null, []), true);
  assert.equal(commonNameAllowed("tikv", ["pd", "tikv"]), true);
  assert.equal(commonNameAllowed("tikv-evil", ["tikv"]), false);
  assert.equal(commonNameAllowed(null, ["tikv"]), false);
  assert.equal(commonNameOf({ subject: { CN: "a" } }), "a");
  assert.equal(commonNameOf({ subject: { CN: ["first", "second"] } }), "first");
  assert.equal(commonNameOf({ subject: { O: "org" } }), null);
  assert.equal(commonNameOf(null), null);
});

Deno.test({
  name:
    "loadTlsIdentity(): none for empty paths; a missing file, a non-PEM file, a foreign key are refused by name",
  ...TLS,
  fn: async () => {
    assert.equal(loadTlsIdentity({ caPath: "", certPath: "", keyPath: "" }), null);
    const pki = await makeTestPki();
    try {
      const good = { caPath: pki.caPath, ...pki.server };
      assert.ok(loadTlsIdentity(good)!.cert.length > 0);
      const refused = (paths: typeof good, key: string, reason: RegExp) =>
        assert.throws(
          () => loadTlsIdentity(paths),
          (error: TlsConfigError) => error.key === key && reason.test(error.reason),
        );
      refused({ ...good, caPath: `${pki.dir}/absent.pem` }, "security.ca-path", /cannot read/);
      refused({ ...good, certPath: pki.server.keyPath }, "security.cert-path", /not a PEM/);
      refused({ ...good, keyPath: pki.server.certPath }, "security.key-path", /not a PEM/);
      refused(
        { ...good, keyPath: pki.client.keyPath },
        "security.key-path",
        /is not the private key of/,
      );
    } finally {
      await pki.remove();
    }
  },
});

Deno.test({
  name:
    "mutual TLS: an allowed client is served; a refused CN, a stranger CA, no certificate and plain text never reach the handler",
  ...TLS,
  fn: async () => {
    const pki = await makeTestPki();
    const server = await echoServer(identityOf(pki, pki.server), [ALLOWED_CN]);
    const address = `127.0.0.1:${server.port}`;
    try {
      assert.deepEqual(await echo(address, channelCredentials(identityOf(pki, pki.client))), {
        ok: true,
      });
      assert.deepEqual(
        await echo(`localhost:${server.port}`, channelCredentials(identityOf(pki, pki.client))),
        { ok: true },
        "a DNS name in the server's SANs verifies too",
      );
      assert.equal(server.served.calls, 2);

      const intruder = await echo(address, channelCredentials(identityOf(pki, pki.intruder)));
      assert.ok(!intruder.ok && intruder.code === grpc.status.UNAUTHENTICATED);
      assert.match(
        intruder.details,
        new RegExp(`"${REFUSED_CN}" is not in security.cert-allowed-cn`),
      );

      // The stranger's certificate names an allowed CN, but its CA is not the store's.
      const stranger = await echo(address, channelCredentials(identityOf(pki, pki.stranger)));
      assert.ok(!stranger.ok && stranger.code === grpc.status.UNAVAILABLE);

      const noCertificate = await echo(
        address,
        grpc.credentials.createSsl(Buffer.from(await Deno.readFile(pki.caPath))),
      );
      assert.ok(!noCertificate.ok && noCertificate.code === grpc.status.UNAVAILABLE);

      const plain = await echo(address, grpc.credentials.createInsecure());
      assert.ok(!plain.ok && plain.code === grpc.status.UNAVAILABLE);

      assert.equal(server.served.calls, 2, "no refused client reached the handler");
    } finally {
      server.close();
      await pki.remove();
    }
  },
});

Deno.test({
  name: "mutual TLS: with cert-allowed-cn empty, any certificate the CA signed is served",
  ...TLS,
  fn: async () => {
    const pki = await makeTestPki();
    const server = await echoServer(identityOf(pki, pki.server), []);
    try {
      const result = await echo(
        `127.0.0.1:${server.port}`,
        channelCredentials(identityOf(pki, pki.intruder)),
      );
      assert.deepEqual(result, { ok: true });
    } finally {
      server.close();
      await pki.remove();
    }
  },
});

Deno.test({
  name: "a client refuses a server whose certificate is not for the address it dialled",
  ...TLS,
  fn: async () => {
    const pki = await makeTestPki();
    const server = await echoServer(identityOf(pki, pki.elsewhere), []);
    try {
      const result = await echo(
        `127.0.0.1:${server.port}`,
        channelCredentials(identityOf(pki, pki.client)),
      );
      assert.ok(!result.ok && result.code === grpc.status.UNAVAILABLE);
      assert.equal(server.served.calls, 0);
    } finally {
      server.close();
      await pki.remove();
    }
  },
});

Deno.test({
  name:
    "serveHttps(): an allowed client certificate gets the answer, a refused CN gets 403, none fails the handshake",
  ...TLS,
  fn: async () => {
    const pki = await makeTestPki();
    let handled = 0;
    const server = await serveHttps({
      hostname: "127.0.0.1",
      port: 0,
      identity: identityOf(pki, pki.server),
      allowedCommonNames: [ALLOWED_CN],
    }, (request) => {
      handled++;
      return new Response(`path ${new URL(request.url).pathname}\n`);
    });
    const url = `https://127.0.0.1:${server.port}/health`;
    const caCerts = [await Deno.readTextFile(pki.caPath)];
    const get = async (pair: CertPair | null) => {
      const client = Deno.createHttpClient(
        pair === null ? { caCerts } : {
          caCerts,
          cert: await Deno.readTextFile(pair.certPath),
          key: await Deno.readTextFile(pair.keyPath),
        },
      );
      try {
        const response = await fetch(url, { client, signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
        return { status: response.status, text: await response.text() };
      } catch (error) {
        return { status: 0, text: String(error) };
      } finally {
        client.close();
      }
    };
    try {
      assert.deepEqual(await get(pki.client), { status: 200, text: "path /health\n" });
      const intruder = await get(pki.intruder);
      assert.equal(intruder.status, 403);
      assert.match(intruder.text, /"intruder" is not in security.cert-allowed-cn/);
      assert.equal((await get(null)).status, 0, "no client certificate: no answer");
      assert.equal((await get(pki.stranger)).status, 0, "a stranger CA: no answer");
      assert.equal(handled, 1, "only the allowed client reached the handler");
    } finally {
      await server.shutdown();
      await pki.remove();
    }
  },
});
