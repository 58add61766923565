import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Whether FILE starts like a tar, gzip or zstd archive (the first 512 bytes), so a command that wants JSON can
 * say what it got. Unreadable files answer false: the real open then reports the error.
 */
export function looksLikeArchive(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const b = Buffer.alloc(512);
    const n = readSync(fd, b, 0, 512, 0);
    if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true; // gzip
    if (n >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return true; // zstd
    return n >= 262 && b.toString('latin1', 257, 262) === 'ustar'; // POSIX tar
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
