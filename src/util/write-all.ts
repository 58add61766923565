import type { FileHandle } from 'node:fs/promises';

/**
 * Write all of `b` at file offset `at`. pwrite(2) may write fewer bytes than asked (a filesystem that is nearly
 * full, a signal) without failing; the rest is written by further calls, the first of which then reports the error.
 */
export async function writeAll(fh: FileHandle, b: Buffer, at: number): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, b.length - off, at + off);
    off += bytesWritten;
  }
}
