/**
 * The OFFICIAL kvproto definitions (pingcap/kvproto), loaded at test time with
 * `@grpc/proto-loader` into grpc-js dynamic clients, for the tests that act as an independent
 * TiKV client (`kvproto_compat_test.ts`, `kvproto_txn_compat_test.ts`). Nothing of Basalt's
 * protocol code is imported here: if our `.proto` files drifted from kvproto's names, field
 * numbers or enum values, calls made through these clients would fail.
 *
 * Where the official definitions come from. No npm package ships kvproto's `.proto` files or
 * generated JavaScript (we looked: `kvproto`, `tikv-client`, `@tikv/client` and the like are not
 * published), Debian 12 has no kvproto package, and kvproto's Apache-2.0 files are not ours to
 * vendor into this repository. So they are read at run time, in this order:
 *   1. `KVPROTO_DIR`: a checkout of pingcap/kvproto (its `proto/` and `include/` folders);
 *   2. `KVPROTO_GIT`: a git directory of kvproto (a clone, bare or not), from which `proto/` and `include/` of `KVPROTO_COMMIT` (default: the commit
 *      these tests were written against, else HEAD) are extracted into a temporary directory.
 * With neither, the tests are skipped and say why. kvproto imports `gogoproto/gogo.proto` and
 * `rustproto.proto` (code-generation options only); recent kvproto ships them in `include/`
 * (beside raft-rs's `eraftpb.proto`), older ones expected them from GOPATH, so empty stand-ins go
 * last on the include path: protobufjs keeps custom options uninterpreted and never needs them.
 *
 * Messages are plain objects keyed by kvproto's own snake_case names; u64 fields arrive as
 * decimal strings (send them as strings too), enums as their names, bytes as Buffers.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** Per-call deadline of the official clients. */
export const CALL_TIMEOUT_MS = 10_000;
/** The kvproto commit these tests were written and run against (its master in August 2026). */
export const PINNED_KVPROTO_COMMIT = "b6cdca197b3c9df5b07206a45567381c50ba4318";

/** A dynamic kvproto message, keyed by kvproto's snake_case field names. */
// deno-lint-ignore no-explicit-any
export type Message = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// Locating the official definitions.

/** Where the official definitions are, or why they are not here. */
export type KvprotoSource =
  | { kind: "dir"; dir: string }
  | { kind: "git"; gitDir: string }
  | { kind: "missing"; reason: string };

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** Finds the official definitions: `KVPROTO_DIR`, else `KVPROTO_GIT`. */
export function locateKvproto(): KvprotoSource {
  const dir = Deno.env.get("KVPROTO_DIR");
  if (dir !== undefined) {
    // Asked for explicitly: a wrong path is an error, not a reason to skip.
    if (!isDirectory(`${dir}/proto`) || !isDirectory(`${dir}/include`)) {
      throw new Error(`KVPROTO_DIR=${dir} is not a kvproto checkout (proto/ and include/)`);
    }
    return { kind: "dir", dir };
  }
  const gitDir = Deno.env.get("KVPROTO_GIT");
  if (gitDir !== undefined) {
    // Asked for explicitly, as KVPROTO_DIR: a wrong path is an error, not a reason to skip.
    if (isDirectory(`${gitDir}/objects`)) return { kind: "git", gitDir };
    if (isDirectory(`${gitDir}/.git/objects`)) return { kind: "git", gitDir: `${gitDir}/.git` };
    throw new Error(`KVPROTO_GIT=${gitDir} is not a git directory of kvproto`);
  }
  return {
    kind: "missing",
    reason: "the official kvproto definitions are not on this machine: set KVPROTO_DIR to a " +
      "checkout of pingcap/kvproto (or KVPROTO_GIT to a git directory of it)",
  };
}

/** What a test built on the official definitions starts from; see `kvprotoTest`. */
export interface KvprotoTest {
  source: KvprotoSource;
  /**
   * `Deno.test` options: skipped when the definitions are missing; ops and resources are not
   * sanitized, as in every end-to-end test (the store is a child process).
   */
  testOptions: { ignore: boolean; sanitizeOps: false; sanitizeResources: false };
}

/**
 * Locates the official definitions for the test file `testName` and, when they are missing,
 * says that it is skipped and why.
 *
 * @example
 * ```ts
 * const { source, testOptions } = kvprotoTest("kvproto_compat_test");
 * Deno.test({ name: "…", ...testOptions, fn: () => withKvproto(source, async (kvproto) => {}) });
 * ```
 */
export function kvprotoTest(testName: string): KvprotoTest {
  const source = locateKvproto();
  if (source.kind === "missing") console.log(`${testName} skipped: ${source.reason}`);
  return {
    source,
    testOptions: {
      ignore: source.kind === "missing",
      sanitizeOps: false,
      sanitizeResources: false,
    },
  };
}

async function git(gitDir: string, args: string[]): Promise<Uint8Array> {
  const output = await new Deno.Command("git", { args: [`--git-dir=${gitDir}`, ...args] })
    .output();
  if (!output.success) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return output.stdout;
}

/** Extracts proto/ and include/ of a kvproto git directory into `target`; returns the commit. */
async function extractFromGit(gitDir: string, target: string): Promise<string> {
  const wanted = Deno.env.get("KVPROTO_COMMIT") ?? PINNED_KVPROTO_COMMIT;
  let commit: string;
  try {
    commit = new TextDecoder().decode(await git(gitDir, ["rev-parse", `${wanted}^{commit}`]));
  } catch {
    if (Deno.env.get("KVPROTO_COMMIT") !== undefined) throw new Error(`no commit ${wanted}`);
    commit = new TextDecoder().decode(await git(gitDir, ["rev-parse", "HEAD^{commit}"]));
  }
  commit = commit.trim();
  const archive = await git(gitDir, ["archive", "--format=tar", commit, "proto", "include"]);
  const tar = new Deno.Command("tar", { args: ["-x", "-C", target], stdin: "piped" }).spawn();
  const writer = tar.stdin.getWriter();
  await writer.write(archive);
  await writer.close();
  assert.ok((await tar.status).success, "tar extracted the kvproto archive");
  return commit;
}

/** Official definitions loaded into grpc-js, and where they came from. */
export interface Kvproto {
  /** `tikvpb.Tikv`: the store's KV, raw and BatchCommands service. */
  Tikv: grpc.ServiceClientConstructor;
  /** `pdpb.PD`: the Placement Driver's service. */
  PD: grpc.ServiceClientConstructor;
  origin: string;
}

/** Loads tikvpb.proto and pdpb.proto from `source`, extracting into `scratch` when needed. */
export async function loadKvproto(source: KvprotoSource, scratch: string): Promise<Kvproto> {
  let root: string;
  let origin: string;
  if (source.kind === "dir") {
    root = source.dir;
    origin = `KVPROTO_DIR=${root}`;
  } else if (source.kind === "git") {
    root = `${scratch}/kvproto`;
    await Deno.mkdir(root);
    origin = `${source.gitDir} @ ${await extractFromGit(source.gitDir, root)}`;
  } else {
    throw new Error(source.reason);
  }
  // Stand-ins for option-only imports, consulted only when kvproto's include/ lacks them.
  const stubs = `${scratch}/stubs`;
  await Deno.mkdir(`${stubs}/gogoproto`, { recursive: true });
  await Deno.writeTextFile(`${stubs}/gogoproto/gogo.proto`, 'syntax = "proto2";\n');
  await Deno.writeTextFile(`${stubs}/rustproto.proto`, 'syntax = "proto2";\n');
  const definition = await protoLoader.load(["tikvpb.proto", "pdpb.proto"], {
    includeDirs: [`${root}/proto`, `${root}/include`, stubs],
    keepCase: true, // kvproto's own field names: region_error, not regionError
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    tikvpb: { Tikv: grpc.ServiceClientConstructor };
    pdpb: { PD: grpc.ServiceClientConstructor };
  };
  return { Tikv: loaded.tikvpb.Tikv, PD: loaded.pdpb.PD, origin };
}

/**
 * Runs `body` with the official definitions loaded into a temporary directory that is removed
 * afterwards; prints where they came from.
 */
export async function withKvproto(
  source: KvprotoSource,
  body: (kvproto: Kvproto) => Promise<void>,
): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "basalt_kvproto_" });
  try {
    const kvproto = await loadKvproto(source, scratch);
    console.log(`official kvproto definitions from ${kvproto.origin}`);
    await body(kvproto);
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The independent client.

/** A bidi stream whose answers are matched to requests by `request_ids` (BatchCommands). */
export interface BatchStream {
  send(requests: Message[]): Promise<Message[]>;
  close(): void;
}

/** A client of one official service (`tikvpb.Tikv` or `pdpb.PD`), made only from kvproto. */
export class OfficialClient {
  readonly #client: grpc.Client;
  readonly #methods: Record<string, unknown>;

  constructor(service: grpc.ServiceClientConstructor, addr: string) {
    this.#client = new service(addr, grpc.credentials.createInsecure());
    this.#methods = this.#client as unknown as Record<string, unknown>;
  }

  #method(name: string): (...args: unknown[]) => unknown {
    const fn = this.#methods[name];
    assert.ok(typeof fn === "function", `the official service has ${name}`);
    return fn as (...args: unknown[]) => unknown;
  }

  /** Calls unary `method`; a gRPC failure rejects with grpc-js's ServiceError. */
  call(method: string, request: Message): Promise<Message> {
    const fn = this.#method(method);
    return new Promise((resolve, reject) => {
      fn.call(
        this.#client,
        request,
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (error: grpc.ServiceError | null, response?: Message) =>
          error ? reject(error) : resolve(response!),
      );
    });
  }

  /** Opens bidi stream `method`. */
  duplex(method: string): grpc.ClientDuplexStream<Message, Message> {
    return this.#method(method).call(this.#client) as grpc.ClientDuplexStream<Message, Message>;
  }

  /** A `tikvpb.Tikv/BatchCommands` stream whose answers are matched by `request_ids`. */
  batchCommands(): BatchStream {
    const stream = this.duplex("BatchCommands");
    const waiting = new Map<string, (response: Message) => void>();
    let nextId = 1;
    stream.on("data", (batch: Message) => {
      batch.request_ids.forEach((id: string, i: number) => {
        const resolve = waiting.get(id);
        assert.ok(resolve !== undefined, `response for an unknown request id ${id}`);
        waiting.delete(id);
        resolve(batch.responses[i]);
      });
    });
    stream.on("error", (error: Error) => {
      if (waiting.size > 0) throw new Error(`BatchCommands stream failed: ${error.message}`);
    });
    return {
      send(requests) {
        const ids = requests.map(() => String(nextId++));
        const answers = ids.map((id) =>
          new Promise<Message>((resolve) => waiting.set(id, resolve))
        );
        stream.write({ requests, request_ids: ids });
        return Promise.all(answers);
      },
      close: () => stream.end(),
    };
  }

  close(): void {
    this.#client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers over kvproto messages.

/** A UTF-8 key or value as kvproto bytes. */
export const b = (text: string): Buffer => Buffer.from(text);
/** kvproto bytes as UTF-8 text. */
export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
/** The keys of a list of `KvPair`s, as text. */
export const keysOf = (pairs: Message[]): string[] => pairs.map((pair) => text(pair.key));
/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
