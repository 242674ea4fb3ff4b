/**
 * `basalt-ctl` (`deno task ctl -- …`): the admin CLI.
 *
 * Online commands talk to a running store through the `RawKV` client (`online.ts`):
 *   --host ADDR raw get KEY | put KEY VALUE [--ttl S] | delete KEY | ttl KEY
 *   --host ADDR raw scan [START] [END] [--limit N] [--reverse] [--key-only]
 *   --host ADDR raw checksum [START END]
 *   --host ADDR txn get KEY | put KEY VALUE | delete KEY | scan [START] [END]   (`txn.ts`)
 *   --host ADDR mvcc KEY  every lock, write record and value of KEY
 *   --status ADDR        a summary of the store's status server (`status.ts`)
 * PD commands talk to a PD (`pd.ts`):
 *   --pd ADDR member list | store list|show ID|delete ID | region list|show ID|key KEY
 *   --pd ADDR (or --host ADDR) region split KEY [KEY…] [--raw]   (`region_split.ts`)
 *   --pd ADDR operator list|show REGION|add transfer-leader|add-peer|remove-peer REGION STORE
 *             |add merge-region SOURCE TARGET
 *   --pd ADDR scheduler list | tso
 * Offline commands work on a stopped store's data directory (`offline.ts`):
 *   --data-dir DIR size | scan [--cf CF] [--from KEY] [--limit N] | compact [--cf CF]
 * Human output by default, `--json` on request; a failure exits non-zero with one line.
 */
import { parseArgs } from "node:util";
import { CtlError } from "./ctl_error.ts";
import { OFFLINE_COMMANDS, runOffline } from "./offline.ts";
import { runRaw } from "./online.ts";
import { PD_GROUPS, runPd } from "./pd.ts";
import { runRegionSplit } from "./region_split.ts";
import { runMvcc, runTxn } from "./txn.ts";
import { fetchStatus, renderStatus } from "./status.ts";
import { loadTlsIdentity, type TlsIdentity } from "../src/security/tls.ts";
import { TlsConfigError } from "../src/security/settings.ts";

const USAGE = `Usage: basalt-ctl [options] <command>

Online commands (a running store; keys and values are UTF-8 text, or hex with --hex):
  --host ADDR raw get KEY          the value of KEY, or "(not found)"
  --host ADDR raw put KEY VALUE [--ttl S]
                                   store VALUE at KEY (expiring after S seconds)
  --host ADDR raw delete KEY       remove KEY
  --host ADDR raw scan [START] [END] [--limit N] [--reverse] [--key-only]
                                   pairs in [START, END), largest first with --reverse
                                   (default limit: 100)
  --host ADDR raw ttl KEY          seconds KEY has left to live
  --host ADDR raw checksum [START END]
                                   CRC-64 XOR checksum, pair count and bytes of a range
  --host ADDR txn get KEY          the value at a fresh snapshot (one transaction each)
  --host ADDR txn put KEY VALUE    write KEY in a transaction; prints the commit ts
  --host ADDR txn delete KEY       delete KEY in a transaction; prints the commit ts
  --host ADDR txn scan [START] [END] [--limit N] [--key-only]
                                   pairs of [START, END) at a fresh snapshot
  --host ADDR mvcc KEY             every lock, write record and value of KEY (MvccGetByKey)
  --status ADDR                    summary of the status server at ADDR (host:port):
                                   requests and latency per RPC, memory, RocksDB

PD commands (a PD process; the reads also work on a store's PD face):
  --pd ADDR member list            PD's members and leader, and the cluster id
  --pd ADDR store list             stores with state, liveness, region and leader counts
  --pd ADDR store show ID          one store
  --pd ADDR store delete ID        take a store offline: its replicas move away
  --pd ADDR region list [--limit N]
                                   regions in key order (default limit: 100)
  --pd ADDR region show ID         one region: range, epoch, peers, leader
  --pd ADDR region key KEY         the region holding KEY
  --pd ADDR region split KEY [KEY…] [--raw]
                                   split the regions holding the keys at them and show
                                   the regions made; transactional keys (the store
                                   encodes them), raw keys with --raw; --host ADDR
                                   splits a standalone store's regions
  --pd ADDR operator list          the running operators
  --pd ADDR operator show REGION   the region's current or last operator (GetOperator)
  --pd ADDR operator add transfer-leader|add-peer|remove-peer REGION STORE
                                   ask PD to move a region's leader or replicas
  --pd ADDR operator add merge-region SOURCE TARGET
                                   ask PD to merge region SOURCE into its neighbour TARGET
  --pd ADDR scheduler list         the schedulers PD runs
  --pd ADDR tso                    a fresh timestamp and its physical time

Offline commands (the store must be stopped):
  --data-dir DIR size              bytes and estimated keys per column family
  --data-dir DIR scan [--cf CF] [--from KEY] [--limit N]
                                   keys and values in order (default cf: default, limit: 100)
  --data-dir DIR compact [--cf CF] compact one column family, or all

Options:
  --host ADDR                      a standalone store's gRPC address (host:port)
  --pd ADDR[,ADDR…]                PD endpoints, instead of --host
  --data-dir DIR                   the store's data directory (holds db/)
  --cf CF                          column family: default, write or lock
  --hex                            keys and values in hex, in and out
  --raw                            region split: the keys are raw keys
  --timeout MS                     deadline of an online command (default 10000)
  --ca-path FILE --cert-path FILE --key-path FILE
                                   mutual TLS (PEM): the CA that signed the store's
                                   certificate, and this client's certificate and key
  --json                           machine-readable output
  --help                           this text`;

const DEFAULT_TIMEOUT_MS = 10_000;

function count(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new CtlError(`${flag} must be a count`);
  return value;
}

/** The client's TLS identity from TiKV ctl's three flags; null when none is given. */
function clientTls(caPath: string, certPath: string, keyPath: string): TlsIdentity | null {
  try {
    return loadTlsIdentity({ caPath, certPath, keyPath });
  } catch (error) {
    if (!(error instanceof TlsConfigError)) throw error;
    const flag = `--${error.key.replace(/^security\./, "")}`;
    throw new CtlError(`${flag}: ${error.reason}`);
  }
}

async function run(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    // `deno task ctl -- …` passes its "--" along; it separates nothing here.
    args: args[0] === "--" ? args.slice(1) : args,
    allowPositionals: true,
    options: {
      "data-dir": { type: "string" },
      host: { type: "string" },
      pd: { type: "string" },
      status: { type: "string" },
      cf: { type: "string" },
      from: { type: "string" },
      limit: { type: "string", default: "100" },
      ttl: { type: "string" },
      reverse: { type: "boolean", default: false },
      "key-only": { type: "boolean", default: false },
      hex: { type: "boolean", default: false },
      raw: { type: "boolean", default: false },
      timeout: { type: "string", default: String(DEFAULT_TIMEOUT_MS) },
      json: { type: "boolean", default: false },
      "ca-path": { type: "string", default: "" },
      "cert-path": { type: "string", default: "" },
      "key-path": { type: "string", default: "" },
      help: { type: "boolean", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || (command === undefined && values.status === undefined)) {
    return console.log(USAGE);
  }
  const limit = count(values.limit!, "--limit");
  const timeoutMs = count(values.timeout!, "--timeout");
  const json = values.json!;
  const tls = clientTls(values["ca-path"]!, values["cert-path"]!, values["key-path"]!);
  if (values.status !== undefined) {
    const summary = await fetchStatus(values.status, timeoutMs, tls);
    return console.log(json ? JSON.stringify(summary) : renderStatus(summary));
  }
  if (command === "raw") {
    return await runRaw(positionals.slice(1), {
      host: values.host,
      pd: values.pd,
      cf: values.cf,
      limit,
      ttl: values.ttl,
      reverse: values.reverse!,
      keyOnly: values["key-only"]!,
      hex: values.hex!,
      json,
      timeoutMs,
      tls,
    });
  }
  if (command === "region" && positionals[1] === "split") {
    return await runRegionSplit(positionals.slice(2), {
      host: values.host,
      pd: values.pd,
      raw: values.raw!,
      limit,
      keyOnly: false,
      hex: values.hex!,
      json,
      timeoutMs,
      tls,
    });
  }
  if ((PD_GROUPS as readonly string[]).includes(command!)) {
    if (values.pd === undefined) throw new CtlError(`${command} commands need --pd ADDR`);
    return await runPd(command!, positionals.slice(1), {
      pd: values.pd,
      limit,
      keyOnly: false,
      hex: values.hex!,
      json,
      timeoutMs,
      tls,
    });
  }
  if (command === "txn" || command === "mvcc") {
    const options = {
      host: values.host,
      pd: values.pd,
      limit,
      keyOnly: values["key-only"]!,
      hex: values.hex!,
      json,
      timeoutMs,
      tls,
    };
    const operands = positionals.slice(1);
    return await (command === "txn" ? runTxn(operands, options) : runMvcc(operands, options));
  }
  const offline = OFFLINE_COMMANDS.find((name) => name === command);
  if (offline === undefined) throw new CtlError(`unknown command "${command}" (try --help)`);
  runOffline(offline, {
    dataDir: values["data-dir"],
    cf: values.cf,
    from: values.from,
    limit,
    json,
  });
}

if (import.meta.main) {
  try {
    await run(Deno.args);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`basalt-ctl: ${message.split("\n")[0]}`);
    Deno.exit(1);
  }
}
