import assert from "node:assert/strict";
import {
  applyToml,
  ConfigError,
  defaultConfig,
  defaultStorePoolSize,
  loadConfig,
  splitThresholds,
  usage,
} from "./config.ts";
import {
  DEFAULT_REGION_MAX_KEYS,
  DEFAULT_REGION_MAX_SIZE_BYTES,
  SPLIT_CHECK_SCAN_MAX_BYTES,
} from "../constants.ts";

Deno.test("loadConfig() with no flags gives TiKV's default addresses and ./data", () => {
  const result = loadConfig([]);
  assert.ok(!result.help);
  assert.equal(result.config.server.addr, "127.0.0.1:20160");
  assert.equal(result.config.server.statusAddr, "127.0.0.1:20180");
  assert.equal(result.config.storage.dataDir, "./data");
});

Deno.test('loadConfig() accepts the "--" that `deno task serve --` passes through', () => {
  const result = loadConfig(["--", "--addr", "127.0.0.1:1234"]);
  assert.ok(!result.help && result.config.server.addr === "127.0.0.1:1234");
});

Deno.test("flags override the configuration file", async () => {
  const file = await Deno.makeTempFile({ suffix: ".toml" });
  try {
    await Deno.writeTextFile(file, '[server]\naddr = "127.0.0.1:1"\n[log]\nlevel = "debug"\n');
    const result = loadConfig(["--config", file, "--addr", "127.0.0.1:2"]);
    assert.ok(!result.help);
    assert.equal(result.config.server.addr, "127.0.0.1:2");
    assert.equal(result.config.log.level, "debug");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("applyToml() refuses unknown sections, unknown keys and bad values by name", () => {
  const refused = (doc: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(
      () => applyToml(defaultConfig(), doc),
      (e: ConfigError) => pattern.test(e.message),
    );
  refused({ readpool: {} }, /readpool: unknown section/);
  refused(
    { raftstore: { "store-pool-size": -1 } },
    /raftstore\.store-pool-size: expected a non-negative integer/,
  );
  refused(
    { storage: { "ttl-check-poll-interval": "soon" } },
    /storage\.ttl-check-poll-interval: expected a duration/,
  );
  refused({ server: { port: 1 } }, /server\.port: unknown key/);
  refused({ server: { addr: "nohost" } }, /server\.addr: "nohost" is not host:port/);
  refused({ server: { addr: "h:70000" } }, /port 70000 is above 65535/);
  refused(
    { rocksdb: { "block-cache-size": "lots" } },
    /rocksdb\.block-cache-size: expected a positive size/,
  );
  refused({ storage: { "sync-log": "yes" } }, /storage\.sync-log: expected true or false/);
});

Deno.test('applyToml() reads sizes as bytes or with units ("1GiB")', () => {
  const config = defaultConfig();
  applyToml(config, { rocksdb: { "block-cache-size": "1GiB", "write-buffer-size": 4096 } });
  assert.equal(config.rocksdb.blockCacheSizeBytes, 1024 ** 3);
  assert.equal(config.rocksdb.writeBufferSizeBytes, 4096);
});

Deno.test("[security] reads TiKV's keys; the path flags override them", async () => {
  const file = await Deno.makeTempFile({ suffix: ".toml" });
  try {
    await Deno.writeTextFile(
      file,
      '[security]\nca-path = "ca.pem"\ncert-path = "s.pem"\nkey-path = "s.key"\n' +
        'cert-allowed-cn = ["tikv-client", "pd"]\n',
    );
    const result = loadConfig(["--config", file, "--key-path", "other.key"]);
    assert.ok(!result.help);
    assert.deepEqual(result.config.security, {
      caPath: "ca.pem",
      certPath: "s.pem",
      keyPath: "other.key",
      certAllowedCn: ["tikv-client", "pd"],
    });
    assert.equal(result.configPath, file);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("[security] is refused when half set, or with cert-allowed-cn alone, or malformed", () => {
  assert.throws(
    () => loadConfig(["--ca-path", "ca.pem"]),
    (e: ConfigError) => /security\.cert-path: .*set together/.test(e.message),
  );
  assert.throws(
    () => applyToml(defaultConfig(), { security: { "cert-allowed-cn": "tikv" } }),
    /security\.cert-allowed-cn: expected a list of names/,
  );
  assert.throws(
    () => applyToml(defaultConfig(), { security: { "ca-file": "x" } }),
    /security\.ca-file: unknown key/,
  );
  const config = defaultConfig();
  assert.deepEqual(config.security.certAllowedCn, []);
  assert.equal(config.security.caPath, "");
});

Deno.test("[storage] reserve-space: unset derives from the write buffer, 0 turns it off, a size is taken", () => {
  assert.equal(defaultConfig().storage.reserveSpaceBytes, null);
  const off = defaultConfig();
  applyToml(off, { storage: { "reserve-space": 0 } });
  assert.equal(off.storage.reserveSpaceBytes, 0);
  const sized = defaultConfig();
  applyToml(sized, { storage: { "reserve-space": "16MB" } });
  assert.equal(sized.storage.reserveSpaceBytes, 16 * 1024 * 1024);
  assert.throws(
    () => applyToml(defaultConfig(), { storage: { "reserve-space": -1 } }),
    ConfigError,
  );
});

Deno.test("--pd takes a comma list (http:// dropped) and [pd] endpoints a TOML list; the advertise flags are TiKV's", () => {
  const line = loadConfig([
    "--pd",
    "127.0.0.1:2379,http://127.0.0.1:2380",
    "--advertise-addr",
    "10.0.0.5:20160",
    "--advertise-status-addr",
    "10.0.0.5:20180",
  ]);
  assert.ok(!line.help);
  assert.deepEqual(line.config.pd.endpoints, ["127.0.0.1:2379", "127.0.0.1:2380"]);
  assert.equal(line.config.server.advertiseAddr, "10.0.0.5:20160");
  assert.equal(line.config.server.advertiseStatusAddr, "10.0.0.5:20180");
  const config = defaultConfig();
  applyToml(config, { pd: { endpoints: ["pd1:2379"] } });
  assert.deepEqual(config.pd.endpoints, ["pd1:2379"]);
  // No --pd: standalone, as before.
  const standalone = loadConfig([]);
  assert.ok(!standalone.help);
  assert.deepEqual(standalone.config.pd.endpoints, []);
});

Deno.test("--pd and --advertise-addr are refused by name when malformed or undialable", () => {
  const refused = (args: string[], key: RegExp) =>
    assert.throws(() => loadConfig(args), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.key, key);
      return true;
    });
  refused(["--pd", ""], /^--pd$/);
  refused(["--pd", "127.0.0.1"], /^--pd$/);
  refused(["--pd", "127.0.0.1:0"], /^--pd$/);
  refused(["--pd", "a:1,a:1"], /^--pd$/);
  refused(["--advertise-addr", "127.0.0.1:0"], /^--advertise-addr$/);
  refused(["--advertise-addr", "0.0.0.0:20160"], /^--advertise-addr$/);
  refused(["--advertise-status-addr", "nohost"], /^--advertise-status-addr$/);
  assert.throws(() => applyToml(defaultConfig(), { pd: { endpoints: [] } }), /pd\.endpoints/);
  assert.throws(() => applyToml(defaultConfig(), { pd: { endpoints: "a:1" } }), /pd\.endpoints/);
  // A joining store publishes its address before it listens: port 0 needs --advertise-addr.
  refused(["--pd", "127.0.0.1:2379", "--addr", "127.0.0.1:0"], /^server\.advertise-addr$/);
  const ok = loadConfig([
    "--pd",
    "127.0.0.1:2379",
    "--addr",
    "127.0.0.1:0",
    "--advertise-addr",
    "127.0.0.1:5",
  ]);
  assert.ok(!ok.help);
});

Deno.test("[raftstore] takes TiKV's Raft timing and log-compaction keys, and refuses a tick under 10ms or heartbeats as slow as elections", async () => {
  const config = defaultConfig();
  applyToml(config, {
    raftstore: {
      "raft-base-tick-interval": "50ms",
      "raft-heartbeat-ticks": 3,
      "raft-election-timeout-ticks": 12,
      "raft-log-gc-count-limit": 20,
      "raft-log-gc-size-limit": "1MiB",
    },
  });
  assert.deepEqual(config.raftstore, {
    storePoolSize: defaultStorePoolSize(),
    raftBaseTickIntervalMs: 50,
    raftHeartbeatTicks: 3,
    raftElectionTimeoutTicks: 12,
    raftLogGcCountLimit: 20,
    raftLogGcSizeLimitBytes: 1024 * 1024,
    splitRegionCheckTickIntervalMs: 10_000,
    hibernateRegions: true,
    pdHeartbeatTickIntervalMs: 60_000,
  });
  for (
    const [toml, key] of [
      ['raft-base-tick-interval = "5ms"', "raftstore.raft-base-tick-interval"],
      [
        "raft-heartbeat-ticks = 10\nraft-election-timeout-ticks = 10",
        "raftstore.raft-heartbeat-ticks",
      ],
    ]
  ) {
    const file = await Deno.makeTempFile({ suffix: ".toml" });
    try {
      await Deno.writeTextFile(file, `[raftstore]\n${toml}\n`);
      assert.throws(
        () => loadConfig(["--config", file]),
        (error: unknown) => error instanceof ConfigError && error.key === key,
        toml,
      );
    } finally {
      await Deno.remove(file);
    }
  }
});

/** Refused by `loadConfig` from a file holding `toml`, with the error's key. */
async function refusedKey(toml: string): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".toml" });
  try {
    await Deno.writeTextFile(file, toml);
    try {
      loadConfig(["--config", file]);
    } catch (error) {
      if (error instanceof ConfigError) return `${error.key}: ${error.reason}`;
      throw error;
    }
    return "accepted";
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("[coprocessor] split thresholds default to TiKV's (96MiB, 1.5x; 960000 keys, 1.5x) and are read in TiKV's spelling", () => {
  const defaults = loadConfig([]);
  assert.ok(!defaults.help);
  assert.deepEqual(defaults.config.coprocessor, {
    regionSplitSizeBytes: 96 * 1024 * 1024,
    regionMaxSizeBytes: null,
    regionSplitKeys: 960_000,
    regionMaxKeys: null,
  });
  assert.deepEqual(splitThresholds(defaults.config.coprocessor), {
    regionSplitSizeBytes: 96 * 1024 * 1024,
    regionMaxSizeBytes: DEFAULT_REGION_MAX_SIZE_BYTES,
    regionSplitKeys: 960_000,
    regionMaxKeys: DEFAULT_REGION_MAX_KEYS,
  });
  assert.equal(DEFAULT_REGION_MAX_SIZE_BYTES, 144 * 1024 * 1024);
  assert.equal(DEFAULT_REGION_MAX_KEYS, 1_440_000);
  assert.equal(defaults.config.raftstore.splitRegionCheckTickIntervalMs, 10_000);
  const config = defaultConfig();
  applyToml(config, {
    coprocessor: {
      "region-split-size": "8MiB",
      "region-max-size": "10MiB",
      "region-split-keys": 100,
      "region-max-keys": 200,
    },
    raftstore: { "split-region-check-tick-interval": "1s" },
  });
  assert.deepEqual(config.coprocessor, {
    regionSplitSizeBytes: 8 * 1024 * 1024,
    regionMaxSizeBytes: 10 * 1024 * 1024,
    regionSplitKeys: 100,
    regionMaxKeys: 200,
  });
  assert.equal(config.raftstore.splitRegionCheckTickIntervalMs, 1000);
  // An unset maximum follows its split value, as TiKV derives it.
  const derived = defaultConfig();
  applyToml(derived, { coprocessor: { "region-split-size": "10MiB", "region-split-keys": 11 } });
  assert.deepEqual(splitThresholds(derived.coprocessor), {
    regionSplitSizeBytes: 10 * 1024 * 1024,
    regionMaxSizeBytes: 15 * 1024 * 1024,
    regionSplitKeys: 11,
    regionMaxKeys: 15,
  });
  assert.match(usage(), /\[coprocessor\] region-split-size, region-max-size, region-split-keys/);
});

Deno.test("[coprocessor] refuses malformed thresholds, a maximum below its split value or above what a check reads; the check interval is 0 or at least a tick", async () => {
  const refused = (doc: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(
      () => applyToml(defaultConfig(), doc),
      (e: ConfigError) => pattern.test(e.message),
    );
  refused(
    { coprocessor: { "region-split-size": 0 } },
    /coprocessor\.region-split-size: expected a positive size/,
  );
  refused(
    { coprocessor: { "region-max-size": "big" } },
    /coprocessor\.region-max-size: expected a positive size/,
  );
  refused(
    { coprocessor: { "region-split-keys": 0 } },
    /coprocessor\.region-split-keys: expected a positive integer/,
  );
  refused(
    { coprocessor: { "region-max-keys": 1.5 } },
    /coprocessor\.region-max-keys: expected a positive integer/,
  );
  refused(
    { coprocessor: { "region-split-count": 1 } },
    /coprocessor\.region-split-count: unknown key/,
  );
  refused(
    { raftstore: { "split-region-check-tick-interval": "often" } },
    /raftstore\.split-region-check-tick-interval: expected a duration/,
  );
  assert.equal(
    await refusedKey('[coprocessor]\nregion-split-size = "10MiB"\nregion-max-size = "9MiB"\n'),
    `coprocessor.region-max-size: ${9 * 1024 * 1024} is below region-split-size (${
      10 * 1024 * 1024
    })`,
  );
  // The derived maximum of a large split size is held to the scan bound too.
  assert.equal(
    await refusedKey(`[coprocessor]\nregion-split-size = ${SPLIT_CHECK_SCAN_MAX_BYTES}\n`),
    `coprocessor.region-max-size: ${
      SPLIT_CHECK_SCAN_MAX_BYTES / 2 * 3
    } is above ${SPLIT_CHECK_SCAN_MAX_BYTES}, the most one split check reads`,
  );
  assert.equal(
    await refusedKey("[coprocessor]\nregion-split-keys = 100\nregion-max-keys = 99\n"),
    "coprocessor.region-max-keys: 99 is below region-split-keys (100)",
  );
  assert.equal(
    await refusedKey("[coprocessor]\nregion-max-keys = 20000000\n"),
    "coprocessor.region-max-keys: 20000000 is above 16777216, the most one split check reads",
  );
  assert.equal(
    await refusedKey('[raftstore]\nsplit-region-check-tick-interval = "50ms"\n'),
    "raftstore.split-region-check-tick-interval: must be 0 (never) or at least raft-base-tick-interval (100ms)",
  );
  assert.equal(
    await refusedKey('[raftstore]\nsplit-region-check-tick-interval = "0"\n'),
    "accepted",
  );
  assert.equal(
    await refusedKey('[coprocessor]\nregion-split-size = "1MiB"\nregion-max-size = "1MiB"\n'),
    "accepted",
  );
});

Deno.test("[raftstore] hibernate-regions is on by default, as in TiKV, and takes a boolean", () => {
  assert.equal(defaultConfig().raftstore.hibernateRegions, true);
  const config = defaultConfig();
  applyToml(config, { raftstore: { "hibernate-regions": false } });
  assert.equal(config.raftstore.hibernateRegions, false);
  assert.throws(
    () => applyToml(defaultConfig(), { raftstore: { "hibernate-regions": "no" } }),
    /raftstore\.hibernate-regions/,
  );
});

Deno.test("[raftstore] pd-heartbeat-tick-interval is 60 s by default, as in TiKV, and at least 1 s", async () => {
  assert.equal(defaultConfig().raftstore.pdHeartbeatTickIntervalMs, 60_000);
  const config = defaultConfig();
  applyToml(config, { raftstore: { "pd-heartbeat-tick-interval": "5s" } });
  assert.equal(config.raftstore.pdHeartbeatTickIntervalMs, 5_000);
  assert.equal(
    await refusedKey('[raftstore]\npd-heartbeat-tick-interval = "500ms"\n'),
    "raftstore.pd-heartbeat-tick-interval: must be at least 1000ms",
  );
});

Deno.test("store-pool-size defaults to the main thread (0) on 2 cores or fewer and to 2 worker threads above", () => {
  assert.equal(defaultStorePoolSize(1), 0);
  assert.equal(defaultStorePoolSize(2), 0);
  assert.equal(defaultStorePoolSize(3), 2);
  assert.equal(defaultStorePoolSize(16), 2);
  const config = defaultConfig();
  applyToml(config, { raftstore: { "store-pool-size": 0 } });
  assert.equal(config.raftstore.storePoolSize, 0);
});
