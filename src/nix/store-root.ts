import { join } from 'node:path';

/**
 * Where a store path's bytes live on disk. Names inside images always stay `/nix/store/...`; with
 * `--store-root DIR` (tests, a chroot store, a mounted copy of another machine's store) they are read from
 * `DIR/nix/store/...` instead. Without a root the name is the file-system path.
 */
export function storeFsPath(storePath: string, storeRoot?: string): string {
  return storeRoot ? join(storeRoot, storePath) : storePath;
}
