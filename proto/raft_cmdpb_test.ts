/**
 * raft_cmdpb (the commands a region's log carries) and the raft_serverpb records a peer keeps on
 * disk: known bytes worked out by hand from kvproto's field numbers, kvproto's enum values, and
 * — when the official definitions are on the machine (`KVPROTO_DIR` or `KVPROTO_GIT`, as for
 * `tests/e2e/kvproto_loader.ts`) — a field-by-field comparison with pingcap/kvproto.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import protobuf from "protobufjs";
import { eraftpb, metapb, raft_cmdpb, raft_serverpb } from "./mod.ts";
import { locateKvproto, PINNED_KVPROTO_COMMIT } from "../tests/e2e/kvproto_loader.ts";

const text = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// RaftCmdRequest{header (1): {region_id (1): 1, region_epoch (5): {conf_ver: 1, version: 1}},
//   requests (2): [Request{cmd_type (1): Put = 3, put (4): {key (2): "k", value (3): "v"}}]}:
//   header                   0a 08  08 01  2a 04 08 01 10 01
//   requests[0]              12 0a  08 03  22 06 12 01 6b 1a 01 76
Deno.test("a RaftCmdRequest with one Put encodes field by field as kvproto", () => {
  const bytes = raft_cmdpb.RaftCmdRequest.encode({
    header: { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } },
    requests: [{ cmdType: raft_cmdpb.CmdType.Put, put: { key: text("k"), value: text("v") } }],
  }).finish();
  assertEquals(hex(bytes), "0a0808012a0408011001" + "120a0803220612016b1a0176");
  const decoded = raft_cmdpb.RaftCmdRequest.decode(bytes);
  assertEquals(decoded.requests[0]?.cmdType, raft_cmdpb.CmdType.Put);
  assertEquals(decoded.header?.regionEpoch?.version, 1n);
  assertEquals(decoded.adminRequest, null);
});

// RaftCmdRequest{admin_request (3): AdminRequest{cmd_type (1): CompactLog = 3,
//   compact_log (4): {compact_index (1): 10, compact_term (2): 5}}}:
//   1a 08  08 03  22 04 08 0a 10 05
Deno.test("a CompactLog admin command encodes as kvproto", () => {
  const bytes = raft_cmdpb.RaftCmdRequest.encode({
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.CompactLog,
      compactLog: { compactIndex: 10n, compactTerm: 5n },
    },
  }).finish();
  assertEquals(hex(bytes), "1a080803" + "2204080a1005");
  assertEquals(
    raft_cmdpb.RaftCmdRequest.decode(bytes).adminRequest?.compactLog?.compactIndex,
    10n,
  );
});

Deno.test("raft_cmdpb enum values are kvproto's", () => {
  const cmd = raft_cmdpb.CmdType;
  assertEquals(
    [cmd.Invalid, cmd.Get, cmd.Put, cmd.Delete, cmd.Snap, cmd.Prewrite, cmd.DeleteRange],
    [0, 1, 3, 4, 5, 6, 7],
  );
  assertEquals([cmd.IngestSST, cmd.ReadIndex], [8, 9]);
  const admin = raft_cmdpb.AdminCmdType;
  assertEquals(
    [admin.ChangePeer, admin.CompactLog, admin.TransferLeader, admin.PrepareMerge],
    [1, 3, 4, 7],
  );
  assertEquals(
    [admin.CommitMerge, admin.RollbackMerge, admin.BatchSplit, admin.ChangePeerV2],
    [8, 9, 10, 11],
  );
  assertEquals(raft_cmdpb.StatusCmdType.RegionDetail, 2);
  assertEquals(raft_serverpb.PeerState.Tombstone, 2);
  assertEquals(raft_serverpb.PeerState.Applying, 1);
});

// RaftApplyState{applied_index (1): 7, truncated_state (2): {index (1): 5, term (2): 5},
//   commit_index (4): 7, commit_term (5): 6}:  08 07  12 04 08 05 10 05  20 07  28 06
Deno.test("RaftApplyState and RaftLocalState encode as kvproto", () => {
  const apply = raft_serverpb.RaftApplyState.encode({
    appliedIndex: 7n,
    truncatedState: { index: 5n, term: 5n },
    commitIndex: 7n,
    commitTerm: 6n,
  }).finish();
  assertEquals(hex(apply), "0807120408051005" + "20072806");
  // RaftLocalState{hard_state (1): {term: 6, vote: 1, commit: 7}, last_index (2): 9}.
  const local = raft_serverpb.RaftLocalState.encode({
    hardState: { term: 6n, vote: 1n, commit: 7n },
    lastIndex: 9n,
  }).finish();
  assertEquals(hex(local), "0a06080610011807" + "1009");
});

Deno.test("a ChangePeer command carrying a learner survives a round trip", () => {
  const request: raft_cmdpb.IRaftCmdRequest = {
    header: { regionId: 2n, peer: { id: 3n, storeId: 1n }, uuid: new Uint8Array(16).fill(7) },
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.ChangePeer,
      changePeer: {
        changeType: eraftpb.ConfChangeType.AddLearnerNode,
        peer: { id: 9n, storeId: 4n, role: metapb.PeerRole.Learner },
      },
    },
  };
  const bytes = raft_cmdpb.RaftCmdRequest.encode(request).finish();
  const decoded = raft_cmdpb.RaftCmdRequest.decode(bytes);
  assertEquals(decoded.adminRequest?.changePeer?.peer?.role, metapb.PeerRole.Learner);
  assertEquals(hex(raft_cmdpb.RaftCmdRequest.encode(decoded).finish()), hex(bytes));
});

// ---------------------------------------------------------------------------------------------
// Field-by-field comparison with the official definitions.

/** The official kvproto proto/ and include/ folders, or why they are not here. */
async function officialDir(scratch: string): Promise<string | { skipped: string }> {
  const source = locateKvproto();
  if (source.kind === "missing") return { skipped: source.reason };
  if (source.kind === "dir") return source.dir;
  const commit = Deno.env.get("KVPROTO_COMMIT") ?? PINNED_KVPROTO_COMMIT;
  for (const folder of ["proto", "include"]) {
    const archive = await new Deno.Command("git", {
      args: [`--git-dir=${source.gitDir}`, "archive", "--format=tar", commit, folder],
      stdout: "piped",
    }).output();
    assert(archive.success, `git archive ${commit} ${folder} from ${source.gitDir}`);
    const tar = new Deno.Command("tar", { args: ["-x", "-C", scratch], stdin: "piped" }).spawn();
    const writer = tar.stdin.getWriter();
    await writer.write(archive.stdout);
    await writer.close();
    assert((await tar.status).success, "tar extracted the kvproto archive");
  }
  return scratch;
}

/** Loads `files` with protobufjs, resolving imports in `dirs` (first match wins). */
function load(dirs: string[], files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of dirs) {
      try {
        Deno.statSync(`${dir}/${target}`);
        return `${dir}/${target}`;
      } catch { /* next */ }
    }
    return target;
  };
  return root.loadSync(files, { keepCase: true });
}

/** Every type of ours must exist in kvproto with the same fields (number, type, rule). */
function compareNamespace(ours: protobuf.Namespace, theirs: protobuf.Root): string[] {
  const problems: string[] = [];
  for (const nested of ours.nestedArray) {
    const name = nested.fullName.slice(1);
    if (nested instanceof protobuf.Type) {
      const other = theirs.lookup(name);
      if (!(other instanceof protobuf.Type)) {
        problems.push(`${name}: not a message in kvproto`);
        continue;
      }
      for (const field of nested.fieldsArray) {
        const them = other.fields[field.name];
        const mine = `${field.id} ${field.rule ?? ""} ${field.type}`;
        const official = them && `${them.id} ${them.rule ?? ""} ${them.type}`;
        if (mine !== official) problems.push(`${name}.${field.name}: ${mine} vs ${official}`);
      }
    } else if (nested instanceof protobuf.Enum) {
      const other = theirs.lookup(name);
      if (!(other instanceof protobuf.Enum)) {
        problems.push(`${name}: not an enum in kvproto`);
        continue;
      }
      for (const [key, value] of Object.entries(nested.values)) {
        if (other.values[key] !== value) problems.push(`${name}.${key}: ${value}`);
      }
    }
  }
  return problems;
}

Deno.test("raft_cmdpb.proto and raft_serverpb.proto agree with kvproto's, field by field", async (t) => {
  const scratch = await Deno.makeTempDir({ prefix: "basalt-raft-cmdpb-" });
  try {
    const dir = await officialDir(scratch);
    if (typeof dir !== "string") {
      console.log(`comparison with kvproto skipped: ${dir.skipped}`);
      await t.step({ name: "official definitions present", ignore: true, fn: () => {} });
      return;
    }
    const stubs = `${scratch}/stubs`;
    await Deno.mkdir(`${stubs}/gogoproto`, { recursive: true });
    await Deno.writeTextFile(`${stubs}/gogoproto/gogo.proto`, 'syntax = "proto2";\n');
    await Deno.writeTextFile(`${stubs}/rustproto.proto`, 'syntax = "proto2";\n');
    const official = load(
      [`${dir}/proto`, `${dir}/include`, stubs],
      ["raft_cmdpb.proto", "raft_serverpb.proto"],
    );
    const ourDir = new URL("./", import.meta.url).pathname;
    const ours = load([ourDir], ["raft_cmdpb.proto", "raft_serverpb.proto"]);
    const problems = [
      ...compareNamespace(ours.lookup("raft_cmdpb") as protobuf.Namespace, official),
      ...compareNamespace(ours.lookup("raft_serverpb") as protobuf.Namespace, official),
    ];
    assertEquals(problems, []);
    // The comparison must have compared something: the messages a peer stores are there.
    for (const name of ["RaftCmdRequest", "AdminRequest", "BatchSplitRequest"]) {
      assert(ours.lookup(`raft_cmdpb.${name}`) !== null, name);
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});
