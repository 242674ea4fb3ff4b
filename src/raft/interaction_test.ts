/**
 * Runs the datadriven interaction files in `testdata/`. Each file's first comment line names
 * the behaviour and the Raft paper/thesis section it checks; that line is the test's name.
 * `REWRITE=1 deno test -A src/raft/interaction_test.ts` regenerates expected outputs.
 */

import { runDataDriven } from "./datadriven.ts";
import { InteractionEnv } from "./interaction_env.ts";

const dir = new URL("./testdata/", import.meta.url);
const files = [...Deno.readDirSync(dir)]
  .filter((e) => e.isFile && e.name.endsWith(".txt"))
  .map((e) => e.name)
  .sort();

for (const file of files) {
  const url = new URL(file, dir);
  const text = Deno.readTextFileSync(url);
  const title = text.split("\n")[0]!.replace(/^#\s*/, "");
  Deno.test(`${title} (testdata/${file})`, () => {
    const env = new InteractionEnv();
    const { failures, rewritten } = runDataDriven({
      name: file,
      text,
      handler: (c) => env.handle(c),
    });
    if (Deno.env.get("REWRITE") === "1") {
      Deno.writeTextFileSync(url, rewritten);
      return;
    }
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
  });
}
