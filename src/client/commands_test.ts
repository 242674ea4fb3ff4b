/** The command table agrees with kvproto's BatchCommands oneof and the tikvpb.Tikv methods. */
import assert from "node:assert/strict";
import { tikvpb } from "../../proto/mod.ts";
import { type CommandName, COMMANDS } from "./commands.ts";

const proto = await Deno.readTextFile(new URL("../../proto/tikvpb.proto", import.meta.url));

Deno.test("every batch command round-trips as a BatchCommands oneof member; the others do not", () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    const bytes = tikvpb.BatchCommandsRequest.encode({
      requests: [{ [name]: {} }],
      requestIds: [1n],
    }).finish();
    const decoded = tikvpb.BatchCommandsRequest.decode(bytes).requests[0]!;
    assert.equal(decoded.cmd === name, spec.batch, `${name}: batch = ${spec.batch}`);
  }
});

Deno.test("every unary method named is an rpc of tikvpb.Tikv with the command's messages", () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    if (spec.method === null) {
      assert.equal(name as CommandName, "Empty");
      continue;
    }
    const rpc = new RegExp(
      `rpc ${spec.method}\\(kvrpcpb\\.(\\w+)\\) returns \\(kvrpcpb\\.(\\w+)\\)`,
    )
      .exec(proto);
    assert.ok(rpc !== null, `${name}: rpc ${spec.method} in tikvpb.proto`);
    // protobufjs static classes carry the message name as the class name.
    const requestName = (spec.request as unknown as { name: string }).name;
    const responseName = (spec.response as unknown as { name: string }).name;
    assert.deepEqual([requestName, responseName], [rpc[1], rpc[2]], name);
  }
});
