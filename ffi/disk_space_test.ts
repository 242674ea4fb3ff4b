/** Disk space through libc: free bytes of a filesystem, and files whose blocks are allocated. */
import assert from "node:assert/strict";
import { allocateFile, availableBytes } from "./disk_space.ts";

const linux = Deno.build.os === "linux";

Deno.test({
  name: "allocateFile() reserves real blocks, not a sparse file; availableBytes() reads statvfs",
  ignore: !linux,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "basalt_disk_space_" });
    try {
      const free = availableBytes(dir);
      assert.ok(free !== null && Number.isSafeInteger(free) && free > 0, `free: ${free}`);
      const path = `${dir}/reserve`;
      assert.equal(allocateFile(path, 1 << 20), null);
      const stat = Deno.statSync(path);
      assert.equal(stat.size, 1 << 20);
      assert.ok(stat.blocks !== null && stat.blocks * 512 >= 1 << 20, `blocks: ${stat.blocks}`);
      assert.equal(availableBytes(`${dir}/missing/path`), null);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "allocateFile() on a full filesystem fails with a reason and leaves no file",
  ignore: !linux,
  fn: () => {
    // More than any test machine's disk holds: posix_fallocate fails with ENOSPC (or EFBIG).
    const path = `${Deno.makeTempDirSync({ prefix: "basalt_disk_space_" })}/reserve`;
    try {
      const failure = allocateFile(path, 2 ** 52);
      assert.match(failure ?? "", /cannot allocate \d+ bytes for .*reserve \(errno \d+\)/);
      assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
    } finally {
      Deno.removeSync(path.replace(/\/reserve$/, ""), { recursive: true });
    }
  },
});
