/**
 * Every datadriven file is run by some test. A `testdata/*.txt` file that no test reads would
 * sit in the tree looking like coverage while checking nothing (a runner that lists its files
 * by name drops a new one silently), so each file must be claimed by a `*_test.ts` beside its
 * `testdata/` folder: one naming the file, or one running the whole folder (reading
 * `./testdata/` and taking every `.txt` in it).
 *
 * The one datadriven runner is `src/raft/datadriven.ts`: `src/raft` may import nothing outside
 * itself (`src/raft/purity_test.ts`) and its `interaction_env.ts` uses the runner's types, so
 * the runner stays there and the other folders' tests import it from there.
 */
import assert from "node:assert/strict";

const SRC = new URL("../", import.meta.url);

/** Every `testdata` folder under `dir`, depth first. */
function testdataFolders(dir: URL): URL[] {
  const found: URL[] = [];
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    if (!entry.isDirectory) continue;
    const child = new URL(`${entry.name}/`, dir);
    if (entry.name === "testdata") found.push(child);
    else found.push(...testdataFolders(child));
  }
  return found;
}

/** The names of the files in `dir` that end with `suffix`. */
function filesEndingWith(dir: URL, suffix: string): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((entry) => entry.isFile && entry.name.endsWith(suffix))
    .map((entry) => entry.name)
    .sort();
}

/** Whether a test's source runs every `.txt` file of its `./testdata/` folder. */
function runsWholeFolder(source: string): boolean {
  return source.includes(`new URL("./testdata/"`) && source.includes(`.endsWith(".txt")`);
}

/** The `.txt` files of `testdata` that no test of its parent folder claims. */
function unclaimed(testdata: URL): string[] {
  const parent = new URL("../", testdata);
  const tests = filesEndingWith(parent, "_test.ts")
    .map((name) => Deno.readTextFileSync(new URL(name, parent)));
  if (tests.some(runsWholeFolder)) return [];
  return filesEndingWith(testdata, ".txt")
    .filter((name) =>
      !tests.some((source) => source.includes(`"${name}"`) || source.includes(`/${name}`))
    );
}

Deno.test("every testdata/*.txt file under src is claimed by a test beside its folder", () => {
  const folders = testdataFolders(SRC);
  const names = folders.map((folder) => folder.pathname.slice(SRC.pathname.length));
  // The folders known when this test was written must still be found (the walk works).
  for (const known of ["raft/testdata/", "pd/testdata/", "txn/actions/testdata/"]) {
    assert.ok(names.includes(known), `testdata folder src/${known} found (found: ${names})`);
  }
  const orphans = folders.flatMap((folder) =>
    unclaimed(folder).map((name) => `src/${folder.pathname.slice(SRC.pathname.length)}${name}`)
  );
  assert.deepEqual(orphans, [], `datadriven files no test runs: ${orphans.join(", ")}`);
});

Deno.test("a testdata file that no test names is reported as unclaimed", () => {
  const root = Deno.makeTempDirSync({ prefix: "datadriven_claims_" });
  try {
    const dir = new URL(`file://${root}/`);
    Deno.mkdirSync(new URL("testdata/", dir));
    for (const name of ["named.txt", "orphan.txt"]) {
      Deno.writeTextFileSync(new URL(`testdata/${name}`, dir), "cmd\n----\nok\n");
    }
    Deno.writeTextFileSync(new URL("x_test.ts", dir), `const FILES = ["named.txt"];\n`);
    assert.deepEqual(unclaimed(new URL("testdata/", dir)), ["orphan.txt"]);
    // A test that runs its whole folder claims every file in it.
    Deno.writeTextFileSync(
      new URL("y_test.ts", dir),
      `const dir = new URL("./testdata/", import.meta.url);\n` +
        `[...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".txt"));\n`,
    );
    assert.deepEqual(unclaimed(new URL("testdata/", dir)), []);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
