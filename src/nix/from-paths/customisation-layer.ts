import { makeDirs } from '../../util/make-dirs.js';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NixregError, describeSystemError } from '../../errors.js';
import { compareTarPaths, gnuTar, type GnuTarEntry } from './gnu-tar.js';

/**
 * The customisation layer of dockerTools' `contents`: a symlinkJoin of the roots, tarred like nixpkgs does.
 *
 * Shape: every top-level name of a root (`bin`, `etc`, ...) becomes a symlink to `<root>/<name>`, so `/bin/hello`
 * works in the container while the files stay in their store layers. When several roots have the same name and all
 * of them are directories, a real directory is made and their children are merged one level down, recursively;
 * otherwise the first root wins (symlinkJoin's `lndir -silent` order). Roots that are single files have no tree to
 * join and only enter the image through the store layers.
 */
export interface CustomisationLayer {
  /** the conf's `customisation_layer`: the name of the directory holding `layer.tar` and `checksum` */
  dir: string;
  /** sha256 hex of layer.tar (= its diffID) */
  checksum: string;
  size: number;
  entries: GnuTarEntry[];
}

/** `toFs` maps a `/nix/store/...` name to where it can be read (identity for a real store, `--store-root` otherwise). */
export async function planCustomisationEntries(roots: string[], toFs: (storePath: string) => string = (p) => p): Promise<GnuTarEntry[]> {
  const entries: GnuTarEntry[] = [{ path: '', type: 'dir', mode: 0o755 }];
  const dirRoots: string[] = [];
  for (const r of roots) if ((await lstatOrFail(toFs(r))).isDirectory()) dirRoots.push(r);
  await join_('', dirRoots, toFs, entries);
  entries.sort((a, b) => (a.path === '' ? -1 : b.path === '' ? 1 : compareTarPaths(a.path, b.path)));
  return entries;
}

async function join_(rel: string, sources: string[], toFs: (p: string) => string, out: GnuTarEntry[]): Promise<void> {
  const byName = new Map<string, { src: string; isDir: boolean }[]>();
  for (const src of sources) {
    let names: string[];
    try {
      names = await readdir(toFs(src));
    } catch (err) {
      throw new NixregError(`cannot read ${toFs(src)}: ${describeSystemError(err)}`);
    }
    for (const name of names) {
      const child = `${src}/${name}`;
      const isDir = (await lstatOrFail(toFs(child))).isDirectory();
      const list = byName.get(name) ?? [];
      list.push({ src: child, isDir });
      byName.set(name, list);
    }
  }
  for (const [name, list] of byName) {
    const path = rel ? `${rel}/${name}` : name;
    if (list.length > 1 && list.every((x) => x.isDir)) {
      out.push({ path, type: 'dir', mode: 0o755 });
      await join_(
        path,
        list.map((x) => x.src),
        toFs,
        out,
      );
    } else {
      out.push({ path, type: 'symlink', mode: 0o777, target: list[0]!.src });
    }
  }
}

async function lstatOrFail(p: string) {
  try {
    return await lstat(p);
  } catch (err) {
    throw new NixregError(`cannot read ${p}: ${describeSystemError(err)}`);
  }
}

/** The layer bytes and their checksum, before deciding where they live. */
export function renderCustomisationLayer(entries: GnuTarEntry[]): { tar: Buffer; checksum: string } {
  const tar = gnuTar(entries);
  return { tar, checksum: createHash('sha256').update(tar).digest('hex') };
}

/**
 * Write `layer.tar` + `checksum` (64 hex + newline, like nixpkgs' `sha256sum | cut`) as directory `dir`, unless it
 * already exists (the caller names dirs by content). Atomic: a temp sibling renamed into place, so concurrent builds
 * never see a half-written directory, and a lost rename race means another run wrote the same bytes.
 */
export async function writeLayerDir(dir: string, tar: Buffer, checksum: string): Promise<void> {
  const done = await stat(join(dir, 'checksum')).then(
    () => true,
    () => false,
  );
  if (done) return;
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await makeDirs(tmp);
    await writeFile(join(tmp, 'layer.tar'), tar, { mode: 0o444 });
    await writeFile(join(tmp, 'checksum'), checksum + '\n', { mode: 0o444 });
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new NixregError(`cannot write the customisation layer ${dir}: ${describeSystemError(err)}`);
  }
}

export const safeStoreName = (s: string) => s.replace(/[^A-Za-z0-9+._?=-]/g, '-');
