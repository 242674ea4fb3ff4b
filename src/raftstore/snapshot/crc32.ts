/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib and of `node:zlib`'s `crc32`), incremental, in
 * plain TypeScript so that the raftstore's pure modules can checksum snapshot files. The file
 * manager in src/server computes the same value with `node:zlib` (tested equal).
 *
 * @module
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 of `bytes` continued from `previous` (the CRC of the bytes before; 0 to start). */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
