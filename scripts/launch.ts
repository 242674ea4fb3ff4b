/**
 * The shared body of the launchers (`scripts/serve.ts`, `scripts/pd.ts`): work out the child's
 * `deno` arguments from the command line (its exact permissions), print usage or a refusal,
 * run the child, pass SIGINT and SIGTERM on to it, and exit with its status.
 */

/** What one launcher knows about the process it starts. */
export interface Launched {
  /** Prefix of refusals, e.g. "basalt". */
  name: string;
  /** The child's `deno` arguments, or `{ help: true }`; throws a refusal for bad flags. */
  runArgs(args: string[]): string[] | { help: true };
  usage(): string;
  /** Whether `error` is a refusal of the command line (printed, exit 2) rather than a bug. */
  isRefusal(error: unknown): error is Error;
}

/** Runs the launcher; resolves with the exit code. */
export async function launch(args: string[], launched: Launched): Promise<number> {
  let runArgs: string[] | { help: true };
  try {
    runArgs = launched.runArgs(args);
  } catch (error) {
    if (!launched.isRefusal(error)) throw error;
    console.error(`${launched.name}: ${error.message}\n(see --help)`);
    return 2;
  }
  if (!Array.isArray(runArgs)) {
    console.log(launched.usage());
    return 0;
  }
  const child = new Deno.Command(Deno.execPath(), { args: runArgs }).spawn();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch { /* the child has exited already */ }
    });
  }
  const status = await child.status;
  return status.code;
}
