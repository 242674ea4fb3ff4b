import assert from "node:assert/strict";
import { defaultConfig } from "../server/config.ts";
import { listenGrants, SERVER_ENV_VARIABLES, serverPermissionFlags } from "./permissions.ts";

Deno.test("listenGrants(): host and port; port 0 grants the host; localhost also its addresses", () => {
  assert.deepEqual(listenGrants("127.0.0.1:20160"), ["127.0.0.1:20160"]);
  assert.deepEqual(listenGrants("0.0.0.0:0"), ["0.0.0.0"]);
  assert.deepEqual(listenGrants("[::1]:20160"), ["[::1]:20160"]);
  assert.deepEqual(listenGrants("localhost:1"), ["localhost:1", "127.0.0.1:1", "[::1]:1"]);
});

Deno.test("serverPermissionFlags(): the default store gets its two addresses, ./data, the code and the library — no more", () => {
  const flags = serverPermissionFlags({
    config: defaultConfig(),
    codeRoot: "/basalt/",
    libraryPath: "/usr/lib/librocksdb.so.7.8",
  });
  assert.deepEqual(flags, [
    "--no-prompt",
    "--allow-net=127.0.0.1:20160,127.0.0.1:20180",
    "--allow-read=./data,/usr/lib/librocksdb.so.7.8,/basalt/src,/basalt/ffi,/basalt/proto",
    "--allow-write=./data",
    "--allow-ffi",
    `--allow-env=${SERVER_ENV_VARIABLES.join(",")}`,
  ]);
  assert.ok(!flags.some((flag) => /^(-A|--allow-all|--allow-run|--allow-sys)/.test(flag)));
});

Deno.test("serverPermissionFlags(): log file (and its rotation), config and TLS files are granted", () => {
  const config = defaultConfig();
  config.server.addr = "0.0.0.0:20160";
  config.log.file = "/var/log/basalt.log";
  config.storage.dataDir = "/var/lib/basalt";
  config.security = {
    caPath: "/etc/basalt/ca.pem",
    certPath: "/etc/basalt/server.pem",
    keyPath: "/etc/basalt/server.key",
    certAllowedCn: ["tikv-client"],
  };
  const flags = serverPermissionFlags({
    config,
    configPath: "/etc/basalt/basalt.toml",
    codeRoot: "/basalt",
    libraryPath: null,
  });
  assert.equal(flags[1], "--allow-net=0.0.0.0:20160,127.0.0.1:20180");
  assert.equal(
    flags[2],
    "--allow-read=/var/lib/basalt,/var/log/basalt.log,/var/log/basalt.log.1," +
      "/etc/basalt/basalt.toml,/etc/basalt/ca.pem,/etc/basalt/server.pem,/etc/basalt/server.key," +
      "/basalt/src,/basalt/ffi,/basalt/proto",
  );
  assert.equal(flags[3], "--allow-write=/var/lib/basalt,/var/log/basalt.log,/var/log/basalt.log.1");
});

Deno.test("serverPermissionFlags(): a path with a comma cannot be granted and is refused", () => {
  const config = defaultConfig();
  config.storage.dataDir = "/data,/etc";
  assert.throws(
    () => serverPermissionFlags({ config, codeRoot: "/basalt", libraryPath: null }),
    /cannot grant a path with a comma: \/data,\/etc/,
  );
});

const REPO = new URL("../../", import.meta.url);

Deno.test("the Dockerfile runs the store with exactly the permissions worked out for its layout", async () => {
  const dockerfile = await Deno.readTextFile(new URL("Dockerfile", REPO));
  const joined = dockerfile.replace(/\\\n/g, " ");
  const entrypoint = /^ENTRYPOINT (\[.*\])\s*$/m.exec(joined);
  assert.ok(entrypoint !== null, "the Dockerfile has a JSON ENTRYPOINT");
  const argv: string[] = JSON.parse(entrypoint[1]!);
  const main = argv.indexOf("src/server/main.ts");
  assert.deepEqual(argv.slice(0, 2), ["deno", "run"]);
  const config = defaultConfig();
  config.server.addr = "0.0.0.0:20160";
  config.server.statusAddr = "0.0.0.0:20180";
  config.storage.dataDir = "/basalt/data";
  assert.deepEqual(argv.slice(main + 1), [
    "--addr",
    config.server.addr,
    "--status-addr",
    config.server.statusAddr,
    "--data-dir",
    config.storage.dataDir,
  ]);
  // The library is Debian's, under /usr/lib/<multiarch>/ on every architecture.
  const expected = serverPermissionFlags({ config, codeRoot: "/basalt", libraryPath: "/usr/lib" });
  assert.deepEqual(argv.slice(2, main), expected);
  assert.match(dockerfile, /listens on ALL interfaces/);
  assert.match(dockerfile, /trusted network only, or with TLS/);
});

Deno.test("deno.json: -A only in tasks that install packages; ctl reads the store's variables by name", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("deno.json", REPO))) as {
    tasks: Record<string, string>;
  };
  // setup.ts installs librocksdb (and bench's db_bench); tests, the fuzzer and the chaos suite
  // also spawn stores and PD members through the e2e harness, as the tests do.
  const mayInstall = new Set(["setup", "serve", "pd", "cluster", "test", "bench", "fuzz", "chaos"]);
  for (const [name, command] of Object.entries(tasks)) {
    for (const step of command.split("&&").map((part) => part.trim())) {
      if (!/(^| )-A( |$)/.test(step)) continue;
      assert.ok(mayInstall.has(name), `task ${name} runs with -A: ${step}`);
      if (name === "serve" || name === "pd" || name === "cluster") {
        assert.match(step, /scripts\/setup\.ts/, `${name}'s -A is its setup step`);
      }
    }
  }
  assert.match(tasks.serve!, /--allow-run scripts\/serve\.ts$/);
  assert.ok(tasks.ctl!.includes(`--allow-env=${SERVER_ENV_VARIABLES.join(",")} cli/main.ts`));
});

Deno.test("deno task compile bakes in the permissions of the store flags it is given", async () => {
  const { bakedPermissions } = await import("../../scripts/compile.ts");
  const baked = bakedPermissions(["--addr", "0.0.0.0:20160", "--data-dir", "/var/lib/basalt"]);
  const server = baked["basalt-server"]!;
  assert.ok(server.includes("--allow-net=0.0.0.0:20160,127.0.0.1:20180"));
  assert.ok(server.includes("--allow-write=/var/lib/basalt"));
  assert.ok(
    !Object.values(baked).flat().some((flag) => /^(-A|--allow-all|--allow-run)/.test(flag)),
  );
});

Deno.test("serverPermissionFlags(): a clustered store may dial any host (its peers' addresses come from PD); a standalone store dials none", () => {
  const config = defaultConfig();
  const standalone = serverPermissionFlags({ config, codeRoot: "/basalt", libraryPath: null });
  assert.ok(standalone.includes("--allow-net=127.0.0.1:20160,127.0.0.1:20180"));
  config.pd.endpoints = ["127.0.0.1:2379", "localhost:2380"];
  const flags = serverPermissionFlags({ config, codeRoot: "/basalt", libraryPath: null });
  assert.ok(flags.includes("--allow-net"), flags.join(" "));
  assert.ok(!flags.some((flag) => flag.startsWith("--allow-net=")));
});
