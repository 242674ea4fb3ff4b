/**
 * The PD process's transport security end to end (PD's `[security]` as the store's, see
 * `src/pd/server/main.ts`): a PD started with a CA, a certificate and `cert-allowed-cn` — and
 * the narrow permissions of `deno task pd`, which must let it read the three files — serves a
 * client whose certificate is allowed, on gRPC, through `basalt-ctl --pd` and on its status
 * server, and refuses every other client before a call is served. Certificates are made at test
 * time with openssl; without it the tests are skipped, saying so.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { pdpb } from "../../proto/mod.ts";
import { PdClient } from "../../src/client/pd_client.ts";
import {
  ALLOWED_CN,
  type CertPair,
  makeTestPki,
  opensslMissing,
  REFUSED_CN,
  type TestPki,
} from "../../src/security/test_certs.ts";
import { channelCredentials, loadTlsIdentity, type TlsIdentity } from "../../src/security/tls.ts";
import { ctl } from "./ctl.ts";
import { startPd, type TestPd } from "./pd_lib.ts";

const NO_OPENSSL = await opensslMissing();
if (NO_OPENSSL !== null) console.log(`e2e PD TLS tests skipped: ${NO_OPENSSL}`);
const E2E = { ignore: NO_OPENSSL !== null, sanitizeOps: false, sanitizeResources: false };
const REQUEST_TIMEOUT_MS = 5_000;

const identityOf = (pki: TestPki, pair: CertPair): TlsIdentity =>
  loadTlsIdentity({ caPath: pki.caPath, ...pair })!;

/** Runs `body` against a PD with mutual TLS (PD's `cacert-path` key), over a fresh test PKI. */
async function withTlsPd(body: (pd: TestPd, pki: TestPki) => Promise<void>): Promise<void> {
  const pki = await makeTestPki();
  try {
    const pd = await startPd({
      config: [
        "[security]",
        `cacert-path = "${pki.caPath}"`,
        `cert-path = "${pki.server.certPath}"`,
        `key-path = "${pki.server.keyPath}"`,
        `cert-allowed-cn = ["${ALLOWED_CN}"]`,
      ].join("\n") + "\n",
    });
    let failed = true;
    try {
      await body(pd, pki);
      failed = false;
    } finally {
      await pd.stop();
      const parent = pd.dataDir.replace(/\/pd$/, "");
      if (failed) console.error(`e2e: kept PD data and logs of the failed test in ${parent}`);
      else await Deno.remove(parent, { recursive: true });
    }
  } finally {
    await pki.remove();
  }
}

/** GetMembers over a raw channel with `credentials`: the gRPC status code. */
function getMembersCode(addr: string, credentials: grpc.ChannelCredentials): Promise<number> {
  const client = new grpc.Client(addr, credentials);
  return new Promise<number>((resolve) => {
    client.makeUnaryRequest<Uint8Array, Uint8Array>(
      "/pdpb.PD/GetMembers",
      (bytes) => Buffer.from(bytes),
      (buffer) => new Uint8Array(buffer),
      pdpb.GetMembersRequest.encode({}).finish(),
      { deadline: Date.now() + REQUEST_TIMEOUT_MS },
      (error) => resolve(error === null ? grpc.status.OK : error.code),
    );
  }).finally(() => client.close());
}

Deno.test({
  name:
    "e2e PD TLS: a client with an allowed certificate is served; a refused common name gets UNAUTHENTICATED, another CA or plain text no connection",
  ...E2E,
  fn: () =>
    withTlsPd(async (pd, pki) => {
      const client = await PdClient.connect([pd.clientAddr], {
        timeoutMs: REQUEST_TIMEOUT_MS,
        tls: identityOf(pki, pki.client),
      });
      try {
        const members = await client.getMembers();
        assert.equal(members.members.length, 1);
        assert.notEqual(client.clusterId, 0n);
      } finally {
        client.close();
      }
      const intruder = channelCredentials(identityOf(pki, pki.intruder));
      assert.equal(await getMembersCode(pd.clientAddr, intruder), grpc.status.UNAUTHENTICATED);
      const stranger = channelCredentials(identityOf(pki, pki.stranger));
      assert.equal(await getMembersCode(pd.clientAddr, stranger), grpc.status.UNAVAILABLE);
      const plain = grpc.credentials.createInsecure();
      assert.equal(await getMembersCode(pd.clientAddr, plain), grpc.status.UNAVAILABLE);
      const log = await Deno.readTextFile(`${pd.dataDir}.server.log`);
      assert.match(log, new RegExp(`refused a client certificate cn="${REFUSED_CN}"`));
    }),
});

Deno.test({
  name:
    "e2e PD TLS: basalt-ctl --pd takes --ca-path --cert-path --key-path; the status server answers only an allowed certificate",
  ...E2E,
  fn: () =>
    withTlsPd(async (pd, pki) => {
      const tls = (
        pair: CertPair,
      ) => ["--ca-path", pki.caPath, "--cert-path", pair.certPath, "--key-path", pair.keyPath];
      const target = ["--pd", pd.clientAddr, "--timeout", String(REQUEST_TIMEOUT_MS)];
      // `scheduler list` goes through basalt.PdAdmin, `member list` through pdpb.PD.
      for (const command of [["member", "list"], ["scheduler", "list"]]) {
        const run = await ctl([...target, ...tls(pki.client), ...command]);
        assert.equal(run.code, 0, `${command.join(" ")}: ${run.stderr}`);
      }
      const refused = await ctl([...target, ...tls(pki.intruder), "member", "list"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`"${REFUSED_CN}" is not in`));

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
          const response = await fetch(`https://${pd.statusAddr}/health`, {
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
      assert.deepEqual(await get(pki.client), { status: 200, text: "ok\n" });
      assert.equal((await get(pki.intruder)).status, 403);
      assert.equal((await get(null)).status, 0, "no client certificate: no answer");
    }),
});
