import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toNix32 } from '../../digest/nixhash.js';
import { storeFsPath } from '../store-root.js';
import { renderCustomisationLayer, safeStoreName, writeLayerDir, type CustomisationLayer } from './customisation-layer.js';
import { nixregCacheDir } from '../../util/cache-file.js';
import type { GnuTarEntry } from './gnu-tar.js';

const run = promisify(execFile);

/**
 * Where the customisation layer directory lives, and the name the conf (and so the image history) gives it.
 * The stream pipeline reads every conf path through the same --store-root mapping, so:
 * - with --store-root: inside that root, as `<storeDir>/<hash>-<name>-customisation-layer`;
 * - with a writable real Nix store: `nix-store --add`, giving a real store path like nixpkgs' (and a history
 *   comment that does not depend on this machine's $HOME);
 * - otherwise: the nixreg cache directory, named by content.
 */
export async function placeCustomisationLayer(
  entries: GnuTarEntry[],
  o: { name: string; storeDir: string; storeRoot?: string; baseDir?: string; useNix: boolean },
): Promise<CustomisationLayer> {
  const { tar, checksum } = renderCustomisationLayer(entries);
  const leaf = `${safeStoreName(o.name)}-customisation-layer`;
  const result = (dir: string): CustomisationLayer => ({ dir, checksum, size: tar.length, entries });
  if (o.storeRoot) {
    const digest = createHash('sha256').update(`nixreg-customisation:${checksum}:${leaf}`).digest();
    const name = `${o.storeDir}/${toNix32(digest.subarray(0, 20))}-${leaf}`;
    await writeLayerDir(storeFsPath(name, o.storeRoot), tar, checksum);
    return result(name);
  }
  const cached = join(o.baseDir ?? join(nixregCacheDir(), 'customisation'), checksum, leaf);
  await writeLayerDir(cached, tar, checksum);
  if (o.useNix && o.storeDir === '/nix/store') {
    try {
      const { stdout } = await run('nix-store', ['--add', cached], { encoding: 'utf8' });
      const added = stdout.trim();
      if (added.startsWith('/nix/store/')) return result(added);
    } catch {
      /* no Nix, or a store we may not write: the cache path works as well */
    }
  }
  return result(cached);
}
