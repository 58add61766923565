import { readFile, stat } from 'node:fs/promises';
import { describeSystemError, usageError } from '../../errors.js';
import { storeFsPath } from '../store-root.js';

/**
 * streamLayeredImage's customisation layer: `layer.tar` plus `checksum` (its sha256 hex, i.e. the diffID) in the
 * conf's `customisation_layer` store path. Read and validated the same way by `stream` and `push`.
 */
export async function describeCustomisationLayer(cust: string, storeRoot: string | undefined): Promise<{ file: string; diffID: string; size: number }> {
  const dir = storeFsPath(cust, storeRoot);
  let checksum: string;
  try {
    checksum = (await readFile(`${dir}/checksum`, 'utf8')).trim();
  } catch (err) {
    throw usageError(`customisation_layer ${cust}: cannot read its checksum file (${describeSystemError(err)})`);
  }
  if (!/^[0-9a-f]{64}$/.test(checksum)) throw usageError(`customisation_layer ${cust}: checksum file does not hold a sha256 hex digest`);
  const file = `${dir}/layer.tar`;
  const st = await stat(file).catch((err) => {
    throw usageError(`customisation_layer ${cust}: cannot read layer.tar (${describeSystemError(err)})`);
  });
  if (!st.isFile()) throw usageError(`customisation_layer ${cust}: layer.tar is not a regular file`);
  return { file, diffID: `sha256:${checksum}`, size: st.size };
}
