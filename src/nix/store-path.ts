import { createHash } from 'node:crypto';
import { toNix32 } from '../digest/nixhash.js';

/**
 * The store path Nix gives a flat (non-recursive) sha256 fixed-output file, i.e. what `nix-store --add-fixed sha256 F`
 * prints and what a `pullImage` derivation with the same name and hash produces (libstore makeFixedOutputPath):
 *   inner = sha256("fixed:out:sha256:<hex>:")
 *   path  = <storeDir>/<nix32(compress20(sha256("output:out:sha256:<hex(inner)>:<storeDir>:<name>")))>-<name>
 * Computing it lets prefetch print ImagePath without Nix and without the file on disk.
 */
export function fixedOutputPath(fileSha256: Buffer, name: string, storeDir = '/nix/store'): string {
  const inner = createHash('sha256')
    .update(`fixed:out:sha256:${fileSha256.toString('hex')}:`)
    .digest('hex');
  const outer = createHash('sha256').update(`output:out:sha256:${inner}:${storeDir}:${name}`).digest();
  const compressed = Buffer.alloc(20);
  for (let i = 0; i < outer.length; i++) compressed[i % 20]! ^= outer[i]!;
  return `${storeDir}/${toNix32(compressed)}-${name}`;
}

/** pullImage's default derivation name: fixName "docker-image-${finalImageName}-${finalImageTag}.tar". */
export function pullImageName(finalImageName: string, finalImageTag: string): string {
  return `docker-image-${finalImageName}-${finalImageTag}.tar`.replace(/[/:]/g, '-');
}
