/**
 * A write path for tests: it checks every write against its region (duty 6 of the write path,
 * as an assertion), keeps a copy of what it was given, and passes the write on to a real one.
 * Tests read `writes` to see which modifications each command produced.
 */
import { assertModificationsInRegion, type RegionMeta } from "./region_range.ts";
import type { Modification } from "./modification.ts";
import type { WriteOptions, WritePath } from "./write_path.ts";

/** One write the recording path was given. */
export interface RecordedWrite {
  regionId: bigint;
  modifications: Modification[];
}

/** Records every write (copies: the caller may reuse its buffers, duty 1), then forwards it. */
export class RecordingWritePath implements WritePath {
  readonly writes: RecordedWrite[] = [];

  constructor(private readonly next: WritePath) {}

  write(
    region: RegionMeta,
    modifications: readonly Modification[],
    options?: WriteOptions,
  ): Promise<void> {
    assertModificationsInRegion(region, modifications);
    this.writes.push({ regionId: region.id, modifications: modifications.map(copyOf) });
    return this.next.write(region, modifications, options);
  }

  /** Every modification recorded since `from` (an index into `writes`). */
  modificationsSince(from: number): Modification[] {
    return this.writes.slice(from).flatMap((write) => write.modifications);
  }
}

function copyOf(modification: Modification): Modification {
  switch (modification.type) {
    case "put":
      return { ...modification, key: modification.key.slice(), value: modification.value.slice() };
    case "delete":
      return { ...modification, key: modification.key.slice() };
    case "deleteRange":
      return {
        ...modification,
        startKey: modification.startKey.slice(),
        endKey: modification.endKey.slice(),
      };
  }
}
