/**
 * The PD process's command line and TOML: PD's flag names and keys, flags over the file, and
 * every refusal naming its key (a member at another peer URL, a bad URL, an unknown key).
 */
import assert from "node:assert/strict";
import { PD_ELECTION_INTERVAL_MS, PD_MEMBERS_MAX } from "../../constants.ts";
import { ConfigError, loadPdConfig } from "./config.ts";
import { memberIdOf } from "./main.ts";
import { pdPermissionFlags } from "./permissions.ts";

function config(args: string[]) {
  const line = loadPdConfig(args);
  assert.ok(!line.help);
  return line;
}

function refusedKey(args: string[]): string {
  try {
    loadPdConfig(args);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.key;
  }
  assert.fail(`accepted ${args.join(" ")}`);
}

Deno.test("defaults are PD's: name pd, client 2379, peer 2380, data dir default.pd, one member", () => {
  const { config: c } = config([]);
  assert.equal(c.name, "pd");
  assert.equal(c.clientAddr, "127.0.0.1:2379");
  assert.deepEqual(c.advertiseClientUrls, ["http://127.0.0.1:2379"]);
  assert.deepEqual(c.peerUrls, ["http://127.0.0.1:2380"]);
  assert.deepEqual([...c.initialCluster.keys()], ["pd"]);
  assert.equal(c.dataDir, "default.pd");
  assert.equal(c.log.level, "info");
});

Deno.test("PD's flags, after a `--`; flags win over the TOML file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "basalt-pd-config-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/pd.toml`,
      [
        'name = "from-file"',
        'data-dir = "/tmp/from-file"',
        "[log]",
        'level = "debug"',
        "[schedule]",
        'max-store-down-time = "1m"',
        "leader-schedule-limit = 8",
        'interval = "250ms"',
        "[replication]",
        "max-replicas = 1",
      ].join("\n"),
    );
    const { config: c, configPath } = config([
      "--",
      "--config",
      `${dir}/pd.toml`,
      "--name",
      "pd1",
      "--client-urls",
      "http://127.0.0.1:3379",
      "--advertise-client-urls",
      "http://10.0.0.1:3379",
      "--peer-urls",
      "http://127.0.0.1:3380",
      "--initial-cluster",
      "pd1=http://127.0.0.1:3380",
      "--log-file",
      "/tmp/pd.log",
    ]);
    assert.equal(configPath, `${dir}/pd.toml`);
    assert.equal(c.name, "pd1");
    assert.equal(c.clientAddr, "127.0.0.1:3379");
    assert.deepEqual(c.advertiseClientUrls, ["http://10.0.0.1:3379"]);
    assert.equal(c.dataDir, "/tmp/from-file");
    assert.deepEqual(c.log, { level: "debug", file: "/tmp/pd.log" });
    assert.equal(c.schedule.maxStoreDownTimeMs, 60_000);
    assert.equal(c.schedule.leaderScheduleLimit, 8);
    assert.equal(c.schedule.maxReplicas, 1);
    assert.equal(c.scheduleIntervalMs, 250);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("three members: --initial-cluster names them all, this one at its --peer-urls", () => {
  const { config: c } = config([
    "--name",
    "pd2",
    "--peer-urls",
    "http://127.0.0.1:3380",
    "--initial-cluster",
    "pd1=http://127.0.0.1:2380,pd2=http://127.0.0.1:3380,pd3=http://127.0.0.1:4380",
  ]);
  assert.deepEqual([...c.initialCluster.keys()], ["pd1", "pd2", "pd3"]);
  assert.deepEqual(c.initialCluster.get("pd2"), ["http://127.0.0.1:3380"]);
});

Deno.test("refused, naming the key: a member listed at another peer URL, too many members, a member not named, bad URLs and levels, unknown keys", () => {
  assert.equal(
    refusedKey(["--name", "pd1", "--initial-cluster", "pd1=http://a:1,pd2=http://b:2"]),
    "initial-cluster",
  );
  const many = Array.from({ length: PD_MEMBERS_MAX + 1 }, (_, i) => `pd${i}=http://h:${i + 1}`);
  assert.equal(
    refusedKey(["--name", "pd0", "--peer-urls", "http://h:1", "--initial-cluster", many.join(",")]),
    "initial-cluster",
  );
  assert.equal(
    refusedKey(["--name", "pd1", "--initial-cluster", "pd2=http://b:2"]),
    "initial-cluster",
  );
  assert.equal(refusedKey(["--client-urls", "http://no-port"]), "client-urls");
  assert.equal(refusedKey(["--status-addr", "127.0.0.1:99999"]), "status-addr");
  assert.equal(refusedKey(["--log-level", "loud"]), "log-level");
  assert.equal(refusedKey(["--name", "a b"]), "name");
  assert.equal(refusedKey(["--bogus"]), "flags");
  const dir = Deno.makeTempDirSync({ prefix: "basalt-pd-config-" });
  try {
    Deno.writeTextFileSync(`${dir}/a.toml`, "[schedule]\nmystery = 1\n");
    assert.equal(refusedKey(["--config", `${dir}/a.toml`]), "schedule.mystery");
    Deno.writeTextFileSync(`${dir}/b.toml`, '[schedule]\nmax-store-down-time = "5s"\n');
    assert.equal(refusedKey(["--config", `${dir}/b.toml`]), "schedule");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("permissions: the two listen addresses, the data dir and log files, no more", () => {
  const { config: c } = config([
    "--client-urls",
    "http://127.0.0.1:0",
    "--status-addr",
    "127.0.0.1:2381",
    "--data-dir",
    "/d",
    "--log-file",
    "/l.log",
  ]);
  assert.deepEqual(pdPermissionFlags({ config: c, libraryPath: "/lib/rocks.so" }).slice(0, 4), [
    "--no-prompt",
    "--allow-net=127.0.0.1,127.0.0.1:2381",
    "--allow-read=/d,/l.log,/l.log.1,/lib/rocks.so",
    "--allow-write=/d,/l.log,/l.log.1",
  ]);
});

Deno.test("a member id is stable for a name and its peer URLs, and never 0", () => {
  assert.equal(memberIdOf("pd1", ["http://a:1"]), memberIdOf("pd1", ["http://a:1"]));
  assert.notEqual(memberIdOf("pd1", ["http://a:1"]), memberIdOf("pd2", ["http://a:1"]));
  assert.notEqual(memberIdOf("", []), 0n);
});

Deno.test("[security] takes PD's cacert-path or the store's ca-path, cert-path, key-path and cert-allowed-cn; --cacert --cert --key win", () => {
  const dir = Deno.makeTempDirSync({ prefix: "basalt-pd-config-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/pd.toml`,
      '[security]\ncacert-path = "/ca.pem"\ncert-path = "/pd.pem"\nkey-path = "/pd.key"\n' +
        'cert-allowed-cn = ["tikv", "tidb"]\n',
    );
    const { config: fromFile } = config(["--config", `${dir}/pd.toml`]);
    assert.deepEqual(fromFile.security, {
      caPath: "/ca.pem",
      certPath: "/pd.pem",
      keyPath: "/pd.key",
      certAllowedCn: ["tikv", "tidb"],
    });
    Deno.writeTextFileSync(`${dir}/store_keys.toml`, '[security]\nca-path = "/ca2.pem"\n');
    const { config: flags } = config([
      "--config",
      `${dir}/store_keys.toml`,
      "--cert",
      "/c.pem",
      "--key",
      "/c.key",
    ]);
    assert.equal(flags.security.caPath, "/ca2.pem");
    assert.equal(flags.security.certPath, "/c.pem");
    assert.equal(flags.security.keyPath, "/c.key");
    assert.deepEqual(config(["--cacert", "/a", "--cert", "/b", "--key", "/c"]).config.security, {
      caPath: "/a",
      certPath: "/b",
      keyPath: "/c",
      certAllowedCn: [],
    });
    Deno.writeTextFileSync(`${dir}/cn_only.toml`, '[security]\ncert-allowed-cn = ["tikv"]\n');
    assert.equal(refusedKey(["--config", `${dir}/cn_only.toml`]), "security.cert-allowed-cn");
    Deno.writeTextFileSync(`${dir}/unknown.toml`, "[security]\nredact-info-log = true\n");
    assert.equal(refusedKey(["--config", `${dir}/unknown.toml`]), "security.redact-info-log");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("TLS is all or nothing: a certificate without a CA or key is refused by name", () => {
  assert.equal(refusedKey(["--cert", "/c.pem"]), "security.ca-path");
  assert.equal(refusedKey(["--cacert", "/a", "--cert", "/c.pem"]), "security.key-path");
});

Deno.test("max-connections and connection-idle-timeout: the store's defaults, set by TOML, checked", () => {
  const { config: c } = config([]);
  assert.equal(c.maxConnections, 4096);
  assert.equal(c.connectionIdleTimeoutMs, 10 * 60 * 1000);
  const dir = Deno.makeTempDirSync({ prefix: "basalt-pd-config-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/pd.toml`,
      'max-connections = 3\nconnection-idle-timeout = "1s"\n',
    );
    const { config: set } = config(["--config", `${dir}/pd.toml`]);
    assert.equal(set.maxConnections, 3);
    assert.equal(set.connectionIdleTimeoutMs, 1000);
    Deno.writeTextFileSync(`${dir}/never.toml`, 'connection-idle-timeout = "0s"\n');
    assert.equal(config(["--config", `${dir}/never.toml`]).config.connectionIdleTimeoutMs, 0);
    Deno.writeTextFileSync(`${dir}/zero.toml`, "max-connections = 0\n");
    assert.equal(refusedKey(["--config", `${dir}/zero.toml`]), "max-connections");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("election-interval: PD's 3 s by default, set by TOML in whole Raft ticks, checked", () => {
  assert.equal(config([]).config.electionTimeoutTicks, PD_ELECTION_INTERVAL_MS / 100);
  assert.equal(config([]).config.electionTimeoutTicks, 30);
  const dir = Deno.makeTempDirSync({ prefix: "basalt-pd-config-" });
  try {
    Deno.writeTextFileSync(`${dir}/pd.toml`, 'election-interval = "1s"\n');
    assert.equal(config(["--config", `${dir}/pd.toml`]).config.electionTimeoutTicks, 10);
    const refused: Array<[string, string]> = [["odd", "150ms"], ["short", "200ms"], ["bad", "3"]];
    for (const [name, value] of refused) {
      Deno.writeTextFileSync(`${dir}/${name}.toml`, `election-interval = "${value}"\n`);
      assert.equal(refusedKey(["--config", `${dir}/${name}.toml`]), "election-interval", name);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("permissions: the three TLS files are readable when [security] is set", () => {
  const { config: c } = config([
    "--data-dir",
    "/d",
    "--cacert",
    "/tls/ca.pem",
    "--cert",
    "/tls/pd.pem",
    "--key",
    "/tls/pd.key",
  ]);
  assert.equal(
    pdPermissionFlags({ config: c, libraryPath: null })[2],
    "--allow-read=/d,/tls/ca.pem,/tls/pd.pem,/tls/pd.key",
  );
});

Deno.test("[schedule] merge keys: PD's names and defaults; 0 turns merge off; wrong types refused naming the key", () => {
  const { config: defaults } = config([]);
  assert.equal(defaults.schedule.maxMergeRegionSizeMb, 20);
  assert.equal(defaults.schedule.maxMergeRegionKeys, 200_000);
  assert.equal(defaults.schedule.splitMergeIntervalMs, 60 * 60 * 1000);
  assert.equal(defaults.schedule.mergeScheduleLimit, 8);
  assert.equal(defaults.schedule.enableOneWayMerge, false);
  const dir = Deno.makeTempDirSync({ prefix: "basalt-pd-config-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/pd.toml`,
      [
        "[schedule]",
        "max-merge-region-size = 54",
        "max-merge-region-keys = 540000",
        'split-merge-interval = "30m"',
        "merge-schedule-limit = 2",
        "enable-one-way-merge = true",
      ].join("\n"),
    );
    const { config: c } = config(["--config", `${dir}/pd.toml`]);
    assert.equal(c.schedule.maxMergeRegionSizeMb, 54);
    assert.equal(c.schedule.maxMergeRegionKeys, 540_000);
    assert.equal(c.schedule.splitMergeIntervalMs, 30 * 60 * 1000);
    assert.equal(c.schedule.mergeScheduleLimit, 2);
    assert.equal(c.schedule.enableOneWayMerge, true);
    Deno.writeTextFileSync(
      `${dir}/off.toml`,
      '[schedule]\nmax-merge-region-size = 0\nmerge-schedule-limit = 0\nsplit-merge-interval = "0s"\n',
    );
    const { config: off } = config(["--config", `${dir}/off.toml`]);
    assert.equal(off.schedule.maxMergeRegionSizeMb, 0);
    assert.equal(off.schedule.mergeScheduleLimit, 0);
    assert.equal(off.schedule.splitMergeIntervalMs, 0);
    const refused: [string, string][] = [
      ["max-merge-region-size = -1", "schedule.max-merge-region-size"],
      ['max-merge-region-keys = "many"', "schedule.max-merge-region-keys"],
      ["split-merge-interval = 10", "schedule.split-merge-interval"],
      ["merge-schedule-limit = 1.5", "schedule.merge-schedule-limit"],
      ['enable-one-way-merge = "yes"', "schedule.enable-one-way-merge"],
    ];
    for (const [line, key] of refused) {
      Deno.writeTextFileSync(`${dir}/bad.toml`, `[schedule]\n${line}\n`);
      assert.equal(refusedKey(["--config", `${dir}/bad.toml`]), key, line);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
