/**
 * The hand-written write-command codec (`cmd_codec.ts`) against protobufjs's generated
 * raft_cmdpb code, which defines the truth: the encoder writes the generated encoder's bytes,
 * and the decoder either returns what the generated decoder returns for the same bytes or gives
 * up (then `decodeCommandFast` is the generated decoder, errors included). Random cases are
 * seeded; a failure names the seed and the case.
 */
import assert from "node:assert/strict";
import { raft_cmdpb } from "../../proto/mod.ts";
import {
  RAFT_COMMAND_MAX_BYTES,
  RAFT_COMMAND_SLAB_BYTES,
  RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES,
} from "../constants.ts";
import { COLUMN_FAMILIES } from "../engine/types.ts";
import type { Modification } from "../storage/modification.ts";
import { modificationToRaftRequest, raftRequestToModification } from "../storage/raft_cmd.ts";
import { AssertionError } from "../util/assert.ts";
import { SeededRandom } from "../util/random.ts";
import {
  decodeCommandFast,
  decodeWriteCommand,
  encodeWriteCommand,
  mergeWriteCommands,
  readWriteOps,
  sameWriteHeader,
  WRITE_OP_DELETE,
  WRITE_OP_PUT,
  type WriteCommandHeader,
  WriteOps,
} from "./cmd_codec.ts";
import { changePeerCommand, encodeCommand, writeCommand } from "./command.ts";
import type { PeerMeta, RegionMeta } from "./local_state.ts";

const SEED = 20261207;

/** u64s around every varint length boundary, and the decoder's 2^49 fast-path limit. */
const U64_EDGES = [
  0n,
  1n,
  127n,
  128n,
  16_383n,
  16_384n,
  (1n << 28n) - 1n,
  1n << 28n,
  (1n << 32n) - 1n,
  1n << 32n,
  (1n << 49n) - 1n,
  1n << 49n,
  (1n << 53n) + 1n,
  (1n << 63n) + 5n,
  (1n << 64n) - 1n,
];
/** The hand-written decoder reads u64s below this; larger ones are left to protobufjs. */
const FAST_U64_LIMIT = 1n << 49n;

function u64(random: SeededRandom): bigint {
  if (random.chance(0.3)) return U64_EDGES[random.int(U64_EDGES.length)]!;
  return BigInt(random.int(1000));
}

function bytes(random: SeededRandom, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < Math.min(length, 64); i++) out[i] = random.int(256);
  for (let i = 64; i < length; i++) out[i] = (i * 31) & 0xff;
  return out;
}

/** Lengths across the varint boundaries of a length prefix (1, 2, 3 and 4 bytes). */
function length(random: SeededRandom, large: boolean): number {
  if (large) return [128, 16_384, 70_000, (1 << 21) + 3][random.int(4)]!;
  return random.chance(0.2) ? 0 : random.int(40);
}

function header(random: SeededRandom): WriteCommandHeader {
  const h: WriteCommandHeader = {
    regionId: u64(random),
    peer: random.chance(0.2)
      ? null
      : { id: u64(random), storeId: u64(random), role: random.int(4) },
    regionEpoch: { confVer: u64(random), version: u64(random) },
  };
  const term = random.int(3);
  if (term === 1) h.term = 0n;
  if (term === 2) h.term = u64(random);
  const syncLog = random.int(3);
  if (syncLog > 0) h.syncLog = syncLog === 2;
  return h;
}

function modification(random: SeededRandom, large: boolean): Modification {
  const cf = COLUMN_FAMILIES[random.int(COLUMN_FAMILIES.length)]!;
  const key = bytes(random, length(random, large && random.chance(0.5)));
  switch (random.int(3)) {
    case 0:
      return { type: "put", cf, key, value: bytes(random, length(random, large)) };
    case 1:
      return { type: "delete", cf, key };
    default:
      return {
        type: "deleteRange",
        cf,
        startKey: key,
        endKey: bytes(random, length(random, false)),
      };
  }
}

function command(random: SeededRandom, i: number) {
  // Now and then a command of large keys and values (few of them), or of many small ones.
  const large = i % 97 === 1;
  const count = large ? 1 + random.int(2) : i % 50 === 2 ? 100 + random.int(100) : random.int(5);
  const modifications = Array.from({ length: count }, () => modification(random, large));
  return { header: header(random), modifications };
}

/** What the generated code writes for the same command (today's `writeCommand` shape). */
function generatedBytes(h: WriteCommandHeader, modifications: readonly Modification[]) {
  const encoded = raft_cmdpb.RaftCmdRequest.encode({
    header: h,
    requests: modifications.map(modificationToRaftRequest),
  }).finish();
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

function u64sOf(h: WriteCommandHeader): bigint[] {
  const peer = h.peer === null ? [] : [h.peer.id, h.peer.storeId];
  return [h.regionId, ...peer, h.regionEpoch.confVer, h.regionEpoch.version, h.term ?? 0n];
}

/**
 * A modification with its bytes as plain arrays: protobufjs's defaults for absent `bytes`
 * fields are Buffers, which strict equality tells apart from Uint8Arrays of the same bytes.
 */
function contents(m: Modification): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(m).map(([name, value]) => [
      name,
      value instanceof Uint8Array ? Array.from(value) : value,
    ]),
  );
}

/**
 * The decoder's promise for `data`: if the generated decoder throws, the hand-written one gives
 * up and `decodeCommandFast` throws the same error; otherwise the hand-written one gives up or
 * returns an equal command, and `decodeCommandFast` returns an equal command. Returns whether
 * the hand-written decoder read it.
 */
function checkDecode(data: Uint8Array, what: string): boolean {
  let expected: raft_cmdpb.RaftCmdRequest | undefined;
  let expectedError: Error | undefined;
  try {
    expected = raft_cmdpb.RaftCmdRequest.decode(data);
  } catch (error) {
    expectedError = error as Error;
  }
  const ours = decodeWriteCommand(data);
  if (expectedError !== undefined) {
    assert.equal(ours, undefined, `${what}: read bytes protobufjs refuses`);
    assert.throws(() => decodeCommandFast(data), { message: expectedError.message }, what);
    return false;
  }
  if (ours !== undefined) assert.deepStrictEqual(ours, expected, what);
  assert.deepStrictEqual(decodeCommandFast(data), expected, what);
  return ours !== undefined;
}

Deno.test("encodeWriteCommand writes protobufjs's bytes for random write commands", () => {
  const random = new SeededRandom(SEED);
  for (let i = 0; i < 2_000; i++) {
    const { header: h, modifications } = command(random, i);
    assert.deepStrictEqual(
      encodeWriteCommand(h, modifications),
      generatedBytes(h, modifications),
      `seed ${SEED}, command ${i}`,
    );
  }
});

Deno.test("mergeWriteCommands writes what encodeWriteCommand writes for the header and every command's modifications in order; sameWriteHeader tells headers apart", () => {
  const random = new SeededRandom(SEED + 7);
  for (let i = 0; i < 500; i++) {
    const { header: h } = command(random, i);
    const parts = Array.from({ length: 1 + random.int(6) }, (_, j) => command(random, i + j));
    const encoded = parts.map((part) => encodeWriteCommand(h, part.modifications));
    const all = parts.flatMap((part) => part.modifications);
    const merged = mergeWriteCommands(encoded);
    assert.deepStrictEqual(merged, encodeWriteCommand(h, all), `seed ${SEED + 7}, case ${i}`);
    assert.deepStrictEqual(merged, generatedBytes(h, all), `seed ${SEED + 7}, case ${i}`);
    for (const bytes of encoded) assert.ok(sameWriteHeader(encoded[0]!, bytes));
    // Another header (a field of it changed) is told apart, and refused by the merge.
    const { header: other } = command(random, i + 1);
    const same = u64sOf(other).join() === u64sOf(h).join() &&
      other.peer?.role === h.peer?.role && other.syncLog === h.syncLog;
    if (same) continue;
    const stranger = encodeWriteCommand(other, parts[0]!.modifications);
    assert.equal(sameWriteHeader(encoded[0]!, stranger), false, `case ${i}`);
    assert.throws(() => mergeWriteCommands([encoded[0]!, stranger]), AssertionError);
  }
});

Deno.test("encodeWriteCommand writes protobufjs's bytes for the largest header", () => {
  const max = (1n << 64n) - 1n;
  const h: WriteCommandHeader = {
    regionId: max,
    peer: { id: max, storeId: max, role: 0x7fff_ffff as PeerMeta["role"] },
    regionEpoch: { confVer: max, version: max },
    term: max,
    syncLog: true,
  };
  const put = {
    type: "put",
    cf: "default",
    key: Uint8Array.of(1),
    value: Uint8Array.of(2),
  } as const;
  assert.deepStrictEqual(encodeWriteCommand(h, [put]), generatedBytes(h, [put]));
});

Deno.test("encodeWriteCommand writes what command.ts's writeCommand encodes to", () => {
  const random = new SeededRandom(SEED + 1);
  for (let i = 0; i < 200; i++) {
    const h = header(random);
    const peer = h.peer ?? { id: 1n, storeId: 1n, role: 0 };
    const region: RegionMeta = {
      id: h.regionId,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: h.regionEpoch,
      peers: [peer],
    };
    const modifications = command(random, i + 1).modifications;
    const theirs = encodeCommand(writeCommand(region, peer, modifications));
    assert.deepStrictEqual(
      encodeWriteCommand(
        { regionId: region.id, peer, regionEpoch: region.regionEpoch },
        modifications,
      ),
      new Uint8Array(theirs.buffer, theirs.byteOffset, theirs.byteLength),
      `seed ${SEED + 1}, command ${i}`,
    );
  }
});

Deno.test("decodeWriteCommand reads every command it wrote as protobufjs does, keys as views", () => {
  const random = new SeededRandom(SEED + 2);
  let fast = 0;
  for (let i = 0; i < 2_000; i++) {
    const { header: h, modifications } = command(random, i);
    const data = encodeWriteCommand(h, modifications);
    const what = `seed ${SEED + 2}, command ${i}`;
    const ours = decodeWriteCommand(data);
    if (u64sOf(h).some((n) => n >= FAST_U64_LIMIT)) {
      assert.equal(ours, undefined, `${what}: a u64 beyond the fast path's is protobufjs's`);
    } else {
      assert.notEqual(ours, undefined, `${what}: not read by hand`);
      fast++;
    }
    const cmd = decodeCommandFast(data);
    assert.deepStrictEqual(cmd, raft_cmdpb.RaftCmdRequest.decode(data), what);
    assert.deepStrictEqual(
      cmd.requests!.map(raftRequestToModification).map(contents),
      modifications.map(contents),
      what,
    );
    for (const request of ours?.requests ?? []) {
      const key = request.put?.key ?? request.delete?.key ?? request.deleteRange?.startKey;
      // An absent key reads protobufjs's shared default (not a view): only present ones count.
      if (key !== undefined && key !== null && key.length > 0) {
        assert.equal(key.buffer, data.buffer, what);
      }
    }
  }
  assert.ok(fast > 1_000, `only ${fast} of 2000 commands took the hand-written path`);
});

Deno.test("every truncation of a command decodes as protobufjs decodes it, or fails as it fails", () => {
  const random = new SeededRandom(SEED + 3);
  const read = { byHand: 0, refused: 0 };
  for (let i = 1; i < 300; i++) {
    if (i % 50 === 2 || i % 97 === 1) continue; // Large ones: their cuts take long, add little.
    const { header: h, modifications } = command(random, i);
    const data = encodeWriteCommand(h, modifications);
    for (let cut = 0; cut < data.length; cut++) {
      const readByHand = checkDecode(data.subarray(0, cut), `command ${i} cut at ${cut}`);
      if (readByHand) read.byHand++;
      else read.refused++;
    }
  }
  // Both answers must have been exercised: a cut at a field's end is a shorter valid command.
  assert.ok(read.byHand > 100 && read.refused > 1_000, JSON.stringify(read));
});

Deno.test("damaged commands and random bytes decode as protobufjs decodes them, or fail as it does", () => {
  const random = new SeededRandom(SEED + 4);
  const read = { byHand: 0, other: 0 };
  for (let i = 1; i < 4_000; i++) {
    let data: Uint8Array;
    if (i % 4 === 0) {
      data = bytes(random, random.int(48));
    } else {
      const { header: h, modifications } = command(random, i % 50 === 2 || i % 97 === 1 ? 0 : i);
      const valid = encodeWriteCommand(h, modifications);
      data = valid.slice();
      for (let n = 1 + random.int(3); n > 0 && data.length > 0; n--) {
        const at = random.int(data.length);
        if (random.chance(0.5)) data[at] = random.int(256);
        else data[at]! ^= 1 << random.int(8);
      }
      if (random.chance(0.2)) {
        const longer = new Uint8Array(data.length + 1);
        longer.set(data);
        longer[data.length] = random.int(256);
        data = longer;
      }
    }
    if (checkDecode(data, `seed ${SEED + 4}, case ${i}`)) read.byHand++;
    else read.other++;
  }
  assert.ok(read.byHand > 100 && read.other > 1_000, JSON.stringify(read));
});

/**
 * `readWriteOps`'s promise for `data`: when it reads the bytes, the generated decoder reads a
 * plain write command of the same header whose requests make the same modifications, in order;
 * when it declines, nothing is promised (the general path decodes). Returns whether it read.
 */
function checkWriteOps(data: Uint8Array, what: string): boolean {
  const ops = new WriteOps();
  if (!readWriteOps(data, ops)) return false;
  const cmd = raft_cmdpb.RaftCmdRequest.decode(data);
  assert.equal(cmd.adminRequest, null, what);
  assert.deepStrictEqual(ops.header, cmd.header, what);
  const expected = cmd.requests.map(raftRequestToModification).map(contents);
  const read = Array.from({ length: ops.count }, (_, i): Modification => {
    const [cf, key, value] = [ops.cfs[i]!, ops.keys[i]!, ops.values[i]!];
    if (ops.kinds[i] === WRITE_OP_PUT) return { type: "put", cf, key, value };
    if (ops.kinds[i] === WRITE_OP_DELETE) return { type: "delete", cf, key };
    return { type: "deleteRange", cf, startKey: key, endKey: value };
  });
  assert.deepStrictEqual(read.map(contents), expected, what);
  return true;
}

Deno.test("readWriteOps reads a write command as the generated decoder and raftRequestToModification do, or declines", () => {
  const random = new SeededRandom(SEED + 5);
  const read = { whole: 0, cut: 0, damaged: 0, declined: 0 };
  for (let i = 0; i < 1_500; i++) {
    const { header: h, modifications } = command(random, i);
    const data = encodeWriteCommand(h, modifications);
    const what = `seed ${SEED + 5}, command ${i}`;
    if (checkWriteOps(data, what)) read.whole++;
    else read.declined++;
    const cut = data.subarray(0, random.int(data.length));
    let decodes = true;
    try {
      raft_cmdpb.RaftCmdRequest.decode(cut);
    } catch {
      decodes = false;
    }
    if (!decodes) {
      assert.equal(
        readWriteOps(cut, new WriteOps()),
        false,
        `${what}: read a cut protobufjs refuses`,
      );
    } else if (checkWriteOps(cut, `${what}, cut`)) read.cut++;
    const damaged = data.slice();
    if (damaged.length > 0) damaged[random.int(damaged.length)]! ^= 1 << random.int(8);
    try {
      raft_cmdpb.RaftCmdRequest.decode(damaged);
    } catch {
      assert.equal(readWriteOps(damaged, new WriteOps()), false, `${what}: read damaged bytes`);
      continue;
    }
    if (checkWriteOps(damaged, `${what}, damaged`)) read.damaged++;
  }
  // Commands with a u64 past the fast path's limit are declined (decodeWriteCommand's rule).
  assert.ok(read.whole > 1_000 && read.cut > 20 && read.damaged > 100, JSON.stringify(read));
});

Deno.test("readWriteOps declines admin commands, other request types and notify-only DeleteRange", () => {
  const ops = new WriteOps();
  const region: RegionMeta = {
    id: 2n,
    startKey: new Uint8Array(),
    endKey: new Uint8Array(),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: [{ id: 3n, storeId: 1n, role: 0 }],
  };
  const through = { region: () => region, meta: region.peers[0]! };
  const change = changePeerCommand(through, {
    changeType: 0,
    peer: { id: 4n, storeId: 2n, role: 1 },
  });
  assert.equal(readWriteOps(encodeCommand(change), ops), false);
  const get = raft_cmdpb.RaftCmdRequest.encode({
    requests: [{ cmdType: raft_cmdpb.CmdType.Get, get: { key: new Uint8Array([1]) } }],
  }).finish();
  assert.equal(readWriteOps(get, ops), false);
  const notifyOnly = raft_cmdpb.RaftCmdRequest.encode({
    requests: [{
      cmdType: raft_cmdpb.CmdType.DeleteRange,
      deleteRange: { startKey: new Uint8Array([1]), endKey: new Uint8Array([2]), notifyOnly: true },
    }],
  }).finish();
  assert.equal(readWriteOps(notifyOnly, ops), false);
  const mismatched = raft_cmdpb.RaftCmdRequest.encode({
    requests: [{ cmdType: raft_cmdpb.CmdType.Delete, put: { key: new Uint8Array([1]) } }],
  }).finish();
  assert.equal(readWriteOps(mismatched, ops), false, "a Delete whose sub-message is a Put");
});

// Hand-made bytes for wire-format corners protobufjs's encoder never writes.
const tagOf = (field: number, wireType: number) => field << 3 | wireType;
const varintField = (field: number, ...value: number[]) => [tagOf(field, 0), ...value];
const lengthField = (field: number, body: number[]) => [tagOf(field, 2), body.length, ...body];
const ascii = (text: string) => Array.from(new TextEncoder().encode(text));
const putRequest = (...body: number[]) =>
  lengthField(2, [...varintField(1, 3), ...lengthField(4, body)]);

Deno.test("wire-format corners: read by hand when exact, else left to protobufjs", () => {
  const header = lengthField(1, [...varintField(1, 7), ...lengthField(5, varintField(2, 1))]);
  const put = putRequest(...lengthField(1, ascii("write")), ...lengthField(2, [1]));
  const cases: { name: string; data: number[]; byHand: boolean }[] = [
    { name: "empty input: an empty command", data: [], byHand: true },
    { name: "a request before the header", data: [...put, ...header], byHand: true },
    { name: "an empty header", data: [...lengthField(1, []), ...put], byHand: true },
    { name: "an empty request", data: lengthField(2, []), byHand: true },
    {
      name: "region id twice: the last wins",
      data: lengthField(1, [...varintField(1, 7), ...varintField(1, 9)]),
      byHand: true,
    },
    {
      name: "region id then zero: no region id",
      data: lengthField(1, [...varintField(1, 7), ...varintField(1, 0)]),
      byHand: true,
    },
    {
      name: "a non-minimal varint",
      data: lengthField(1, varintField(1, 0x81, 0x80, 0)),
      byHand: true,
    },
    {
      name: "a key then an empty key: no key",
      data: putRequest(...lengthField(2, [1]), ...lengthField(2, [])),
      byHand: true,
    },
    {
      name: "a bool written as 2 is true",
      data: lengthField(1, varintField(7, 2)),
      byHand: true,
    },
    {
      name: "notify-only DeleteRange",
      data: lengthField(2, [...varintField(1, 7), ...lengthField(8, varintField(4, 1))]),
      byHand: true,
    },
    {
      name: "cmd_type Get with a put (any mix is kept)",
      data: lengthField(2, [...varintField(1, 1), ...lengthField(4, lengthField(2, [5]))]),
      byHand: true,
    },
    {
      name: "u64 2^49 - 1",
      data: lengthField(1, varintField(6, ...varintBytes(2 ** 49 - 1))),
      byHand: true,
    },
    {
      name: "u64 2^49",
      data: lengthField(1, varintField(6, ...varintBytes(2 ** 49))),
      byHand: false,
    },
    { name: "two headers (protobufjs merges them)", data: [...header, ...header], byHand: false },
    {
      name: "a peer twice (merged)",
      data: lengthField(1, [...lengthField(2, []), ...lengthField(2, [])]),
      byHand: false,
    },
    {
      name: "an unknown column family",
      data: putRequest(...lengthField(1, ascii("extra"))),
      byHand: false,
    },
    {
      name: "a cf that is not UTF-8",
      data: putRequest(...lengthField(1, [0xff, 0xfe])),
      byHand: false,
    },
    { name: "an unknown field in a put", data: putRequest(...varintField(9, 1)), byHand: false },
    { name: "an unknown field in a command", data: varintField(6, 1), byHand: false },
    { name: "read_quorum in the header", data: lengthField(1, varintField(3, 1)), byHand: false },
    { name: "a header with the wrong wire type", data: varintField(1, 1), byHand: false },
    { name: "field number 0", data: [0, 0], byHand: false },
    { name: "a group", data: [tagOf(5, 3), tagOf(5, 4)], byHand: false },
    { name: "a length past the end", data: [tagOf(2, 2), 5, 0], byHand: false },
    {
      name: "a length past its message's end",
      data: lengthField(2, [tagOf(4, 2), 3]),
      byHand: false,
    },
    { name: "a varint cut short", data: lengthField(1, [tagOf(1, 0), 0x80]), byHand: false },
    {
      name: "an 11-byte varint",
      data: lengthField(1, varintField(1, ...Array(10).fill(0x80), 1)),
      byHand: false,
    },
  ];
  for (const { name, data, byHand } of cases) {
    assert.equal(checkDecode(Uint8Array.from(data), name), byHand, name);
  }
});

function varintBytes(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push(v % 0x80 | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

Deno.test("admin and status commands are left to the generated decoder", () => {
  const region: RegionMeta = {
    id: 2n,
    startKey: new Uint8Array(0),
    endKey: Uint8Array.of(9),
    regionEpoch: { confVer: 3n, version: 4n },
    peers: [{ id: 5n, storeId: 1n, role: 0 }],
  };
  const through = { region: () => region, meta: region.peers[0]! };
  const header = { regionId: 2n, peer: through.meta, regionEpoch: region.regionEpoch };
  const commands = [
    changePeerCommand(through, { changeType: 0, peer: { id: 6n, storeId: 2n, role: 1 } }),
    {
      header,
      adminRequest: {
        cmdType: raft_cmdpb.AdminCmdType.CompactLog,
        compactLog: { compactIndex: 10n, compactTerm: 2n },
      },
    },
    {
      header,
      adminRequest: {
        cmdType: raft_cmdpb.AdminCmdType.BatchSplit,
        splits: { requests: [{ splitKey: Uint8Array.of(5), newRegionId: 7n, newPeerIds: [8n] }] },
      },
    },
    { header, statusRequest: { cmdType: raft_cmdpb.StatusCmdType.RegionLeader, regionLeader: {} } },
  ];
  for (const cmd of commands) {
    const encoded = encodeCommand(cmd);
    const data = new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
    assert.equal(decodeWriteCommand(data), undefined);
    const decoded = decodeCommandFast(data);
    assert.deepStrictEqual(decoded, raft_cmdpb.RaftCmdRequest.decode(data));
    assert.notEqual(decoded.adminRequest ?? decoded.statusRequest, null);
  }
});

Deno.test("encodeWriteCommand asserts what is no u64, PeerRole or column family", () => {
  const epoch = { confVer: 1n, version: 1n };
  const put: Modification = {
    type: "put",
    cf: "default",
    key: Uint8Array.of(1),
    value: Uint8Array.of(2),
  };
  const bad: [string, () => unknown][] = [
    [
      "u64 2^64",
      () => encodeWriteCommand({ regionId: 1n << 64n, peer: null, regionEpoch: epoch }, []),
    ],
    [
      "negative u64",
      () => encodeWriteCommand({ regionId: -1n, peer: null, regionEpoch: epoch }, []),
    ],
    [
      "a number for a u64",
      () =>
        encodeWriteCommand(
          { regionId: 1 as unknown as bigint, peer: null, regionEpoch: epoch },
          [],
        ),
    ],
    [
      "negative term",
      () => encodeWriteCommand({ regionId: 1n, peer: null, regionEpoch: epoch, term: -2n }, []),
    ],
    [
      "a negative role",
      () =>
        encodeWriteCommand({
          regionId: 1n,
          peer: { id: 1n, storeId: 1n, role: -1 as PeerMeta["role"] },
          regionEpoch: epoch,
        }, []),
    ],
    [
      "an unknown column family",
      () =>
        encodeWriteCommand({ regionId: 1n, peer: null, regionEpoch: epoch }, [
          { ...put, cf: "extra" as unknown as "default" },
        ]),
    ],
  ];
  for (const [name, encode] of bad) assert.throws(encode, AssertionError, name);
});

Deno.test("encodeWriteCommand asserts a command over RAFT_COMMAND_MAX_BYTES before allocating it", () => {
  // One lazily allocated value used twice: the command would be 2^31 + a few bytes.
  const value = new Uint8Array(2 ** 30 + 1);
  const put: Modification = { type: "put", cf: "default", key: Uint8Array.of(1), value };
  const header = { regionId: 1n, peer: null, regionEpoch: { confVer: 1n, version: 1n } };
  assert.throws(
    () => encodeWriteCommand(header, [put, put]),
    (error: unknown) =>
      error instanceof AssertionError && error.message.includes("RAFT_COMMAND_MAX_BYTES"),
  );
  assert.ok(2 * value.length > RAFT_COMMAND_MAX_BYTES);
});

Deno.test("small commands share slabs without overlapping; a large one has its own array", () => {
  const header = { regionId: 1n, peer: null, regionEpoch: { confVer: 1n, version: 1n } };
  const put = (valueBytes: number): Modification[] => [
    { type: "put", cf: "default", key: Uint8Array.of(1), value: new Uint8Array(valueBytes) },
  ];
  const headerOnly = encodeWriteCommand(header, []).length;
  const sizeOf = (valueBytes: number) => encodeWriteCommand(header, put(valueBytes)).length;
  // The largest value whose command still goes into a slab (lengths of 2-byte varints here).
  let largest = RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES - headerOnly - 60;
  while (sizeOf(largest + 1) <= RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES) largest++;
  assert.equal(sizeOf(largest), RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES);

  const commands = Array.from({ length: 200 }, (_, i) => {
    const modifications = put(i % 10 === 0 ? largest : i);
    return { modifications, bytes: encodeWriteCommand(header, modifications) };
  });
  const slabs = new Set(commands.map((c) => c.bytes.buffer));
  assert.ok(slabs.size > 1 && slabs.size < commands.length, `${slabs.size} slabs`);
  for (const slab of slabs) assert.equal(slab.byteLength, RAFT_COMMAND_SLAB_BYTES);
  // Every command still holds its own bytes after all the others were written.
  for (const [i, { modifications, bytes }] of commands.entries()) {
    assert.deepStrictEqual(bytes, generatedBytes(header, modifications), `command ${i}`);
  }

  const large = encodeWriteCommand(header, put(largest + 1));
  assert.equal(large.byteOffset, 0);
  assert.equal(large.buffer.byteLength, RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES + 1);
});
