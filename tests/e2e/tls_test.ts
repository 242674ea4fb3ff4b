/**
 * Transport security end to end (TiKV's `[security]`): a store started with a CA, a certificate
 * and `cert-allowed-cn` — and the narrow permissions of `deno task serve` — serves TiKV-style
 * clients whose certificate is allowed, over gRPC (raw, transactional through the PD face) and
 * on the status server, and refuses every other client before a request is served.
 * Certificates are made at test time with openssl; without it the tests are skipped, saying so.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { kvrpcpb } from "../../proto/mod.ts";
import { ClientError, RawKV } from "../../src/client/mod.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import {
  ALLOWED_CN,
  type CertPair,
  makeTestPki,
  opensslMissing,
  REFUSED_CN,
  type TestPki,
} from "../../src/security/test_certs.ts";
import { channelCredentials, loadTlsIdentity, type TlsIdentity } from "../../src/security/tls.ts";
import { utf8 } from "../../src/util/bytes.ts";
import { ctl } from "./ctl.ts";
import { type TestServer, TikvClient, withServer } from "./lib.ts";

const NO_OPENSSL = await opensslMissing();
if (NO_OPENSSL !== null) console.log(`e2e TLS tests skipped: ${NO_OPENSSL}`);
const E2E = { ignore: NO_OPENSSL !== null, sanitizeOps: false, sanitizeResources: false };
const REQUEST_TIMEOUT_MS = 5_000;
const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

function securityToml(pki: TestPki): string {
  return [
    "[security]",
    `ca-path = "${pki.caPath}"`,
    `cert-path = "${pki.server.certPath}"`,
    `key-path = "${pki.server.keyPath}"`,
    `cert-allowed-cn = ["${ALLOWED_CN}"]`,
  ].join("\n") + "\n";
}

const identityOf = (pki: TestPki, pair: CertPair): TlsIdentity =>
  loadTlsIdentity({ caPath: pki.caPath, ...pair })!;

/** Runs `body` against a store with mutual TLS, over a fresh test PKI. */
async function withTlsServer(
  body: (server: TestServer, pki: TestPki) => Promise<void>,
): Promise<void> {
  const pki = await makeTestPki();
  try {
    await withServer((server) => body(server, pki), { config: securityToml(pki) });
  } finally {
    await pki.remove();
  }
}

/** A raw put through the raw gRPC client with `credentials`; the gRPC status code on failure. */
async function rawPut(
  server: TestServer,
  credentials: grpc.ChannelCredentials,
  value: string,
): Promise<number> {
  const client = new TikvClient(server.grpcAddr, credentials);
  try {
    await client.call("RawPut", {
      request: kvrpcpb.RawPutRequest,
      response: kvrpcpb.RawPutResponse,
    }, { context: CONTEXT, key: utf8("guarded"), value: utf8(value) });
    return grpc.status.OK;
  } catch (error) {
    return (error as grpc.ServiceError).code;
  } finally {
    client.close();
  }
}

Deno.test({
  name:
    "e2e TLS: a TiKV-style client with an allowed certificate works; one the store does not allow is refused before it is served",
  ...E2E,
  fn: () =>
    withTlsServer(async (server, pki) => {
      const allowed = identityOf(pki, pki.client);
      const raw = await RawKV.connect({
        host: server.grpcAddr,
        timeoutMs: REQUEST_TIMEOUT_MS,
        transport: { tls: allowed },
      });
      try {
        await raw.put("guarded", "v1");
        assert.equal(new TextDecoder().decode((await raw.get("guarded"))!), "v1");
      } finally {
        raw.close();
      }

      // Same CA, common name not in cert-allowed-cn: UNAUTHENTICATED, and the write never ran.
      const intruder = channelCredentials(identityOf(pki, pki.intruder));
      assert.equal(await rawPut(server, intruder, "intruder"), grpc.status.UNAUTHENTICATED);
      // Another CA (with an allowed name), or plain text: no connection at all.
      const stranger = channelCredentials(identityOf(pki, pki.stranger));
      assert.equal(await rawPut(server, stranger, "stranger"), grpc.status.UNAVAILABLE);
      const plain = grpc.credentials.createInsecure();
      assert.equal(await rawPut(server, plain, "plain"), grpc.status.UNAVAILABLE);

      const refused = await RawKV.connect({
        host: server.grpcAddr,
        timeoutMs: REQUEST_TIMEOUT_MS,
        transport: { tls: identityOf(pki, pki.intruder) },
      });
      try {
        await assert.rejects(
          refused.get("guarded"),
          (error: ClientError) => new RegExp(`"${REFUSED_CN}" is not in`).test(error.message),
        );
      } finally {
        refused.close();
      }

      const check = await RawKV.connect({
        host: server.grpcAddr,
        timeoutMs: REQUEST_TIMEOUT_MS,
        transport: { tls: allowed },
      });
      try {
        const value = await check.get("guarded");
        assert.equal(new TextDecoder().decode(value!), "v1", "no refused client's write landed");
      } finally {
        check.close();
      }
      const log = await Deno.readTextFile(`${server.dataDir}.server.log`);
      assert.match(log, new RegExp(`refused a client certificate cn="${REFUSED_CN}"`));
    }),
});

Deno.test({
  name: "e2e TLS: transactions (TSO and regions through the PD face) run over mutual TLS",
  ...E2E,
  fn: () =>
    withTlsServer(async (server, pki) => {
      const client = await TxnKV.connect({
        host: server.grpcAddr,
        timeoutMs: REQUEST_TIMEOUT_MS,
        transport: { tls: identityOf(pki, pki.client) },
      });
      try {
        const txn = await client.begin();
        txn.set("t", "committed");
        await txn.commit();
        const snapshot = await client.snapshot();
        assert.equal(new TextDecoder().decode((await snapshot.get(utf8("t")))!), "committed");
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name:
    "e2e TLS: the status server answers an allowed certificate, 403 to a refused one, nothing without",
  ...E2E,
  fn: () =>
    withTlsServer(async (server, pki) => {
      const caCerts = [await Deno.readTextFile(pki.caPath)];
      const get = async (pair: CertPair | null, path: string) => {
        const client = Deno.createHttpClient(
          pair === null ? { caCerts } : {
            caCerts,
            cert: await Deno.readTextFile(pair.certPath),
            key: await Deno.readTextFile(pair.keyPath),
          },
        );
        try {
          const response = await fetch(`https://${server.statusAddr}${path}`, {
            client,
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          return { status: response.status, text: await response.text() };
        } catch (error) {
          return { status: 0, text: String(error) };
        } finally {
          client.close();
        }
      };
      assert.deepEqual(await get(pki.client, "/health"), { status: 200, text: "ok\n" });
      const config = JSON.parse((await get(pki.client, "/config")).text);
      assert.deepEqual(config.security.certAllowedCn, [ALLOWED_CN]);
      assert.equal((await get(pki.intruder, "/metrics")).status, 403);
      assert.equal((await get(null, "/health")).status, 0);
      const plain = await fetch(`http://${server.statusAddr}/health`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      }).then((response) => response.status, () => 0);
      assert.equal(plain, 0, "plain HTTP gets no answer");
    }),
});

Deno.test({
  name: "e2e TLS: basalt-ctl takes --ca-path --cert-path --key-path as tikv-ctl does",
  ...E2E,
  fn: () =>
    withTlsServer(async (server, pki) => {
      const tls = (
        pair: CertPair,
      ) => ["--ca-path", pki.caPath, "--cert-path", pair.certPath, "--key-path", pair.keyPath];
      const host = ["--host", server.grpcAddr, "--timeout", String(REQUEST_TIMEOUT_MS)];
      const put = await ctl([...host, ...tls(pki.client), "raw", "put", "c", "1"]);
      assert.equal(put.code, 0, put.stderr);
      const get = await ctl([...host, ...tls(pki.client), "raw", "get", "c"]);
      assert.equal(get.stdout.trim(), "1");
      const refused = await ctl([...host, ...tls(pki.intruder), "raw", "get", "c"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`"${REFUSED_CN}" is not in`));
      const status = await ctl(["--status", server.statusAddr, ...tls(pki.client)]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /: ok/);
      const half = await ctl([...host, "--ca-path", pki.caPath, "raw", "get", "c"]);
      assert.equal(half.code, 1);
      assert.match(half.stderr, /--cert-path: .*set together/);
    }),
});
