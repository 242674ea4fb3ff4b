/**
 * The uniqueness check of Insert and CheckNotExists (TiKV `check_data_constraint`): given the
 * newest write record of a key, does the key hold a value?
 *
 * The key exists when the newest record is a Put, or a Lock/Rollback with an older Put
 * visible below it. A Delete, or a record whose GC fence shows it was rewritten after its
 * successor was GC-ed, means the key is absent.
 *
 * @module
 */

import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { Key } from "../../txn_types/key.ts";
import { prevTs, type TimeStamp } from "../../txn_types/timestamp.ts";
import type { Write } from "../../txn_types/write.ts";

/**
 * AlreadyExist when `shouldNotExist` and the key holds a value. `write` must be the key's
 * newest record, committed at `commitTs`.
 */
export function checkDataConstraint(
  reader: MvccReader,
  options: {
    shouldNotExist: boolean;
    write: Write;
    commitTs: TimeStamp;
    key: Key;
    /** The reading transaction's start ts: the GC-fence limit of the older-version read. */
    startTs: TimeStamp;
  },
): MvccResult<void> {
  const { write, key } = options;
  const fenced = write.gcFence !== null && write.gcFence !== 0n;
  if (!options.shouldNotExist || write.writeType === "Delete" || fenced) return ok(undefined);
  let existingStartTs: TimeStamp | null = null;
  if (write.writeType === "Put") {
    existingStartTs = write.startTs;
  } else if (options.commitTs > 0n) {
    const older = reader.getWrite(key, prevTs(options.commitTs), options.startTs);
    existingStartTs = older?.startTs ?? null;
  }
  if (existingStartTs === null) return ok(undefined);
  return err({ kind: "AlreadyExist", key: key.toRaw(), existingStartTs });
}
