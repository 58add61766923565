import { open } from 'node:fs/promises';
import { describeSystemError, usageError } from '../../errors.js';

/**
 * conf.json (JSON: starts with `{`) or an image (archive: tar / gzip / zstd; directory: OCI layout)? Only the
 * first bytes are read. A source that cannot be opened is reported here, as a source (it may have been meant as
 * an archive, so "cannot read conf" would mislead), unless its name says conf (*.json).
 */
export async function isConfFile(file: string): Promise<boolean> {
  if (file.startsWith('conf:')) return true;
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (file.endsWith('.json')) return true; // the conf loader says "cannot read conf FILE: ..."
    throw usageError(`source ${file}: ${describeSystemError(err)}`);
  }
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EISDIR') return { bytesRead: 0 }; // a directory: an OCI layout, openSource tells
      throw usageError(`source ${file}: ${describeSystemError(err)}`);
    });
    return head.subarray(0, bytesRead).toString('latin1').trimStart().startsWith('{');
  } finally {
    await fh.close();
  }
}
