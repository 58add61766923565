import { createHash, type Hash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { NixregError, describeSystemError, usageError } from '../../errors.js';
import { compareTarPaths } from './gnu-tar.js';

/**
 * The non-store part of a single-layer image (buildImage's `copyToRoot` + `extraCommands`): the roots joined into
 * `/` like `contents` (a symlink per top-level name, real directories where several roots share a directory name,
 * as in customisation-layer.ts), then the `--overlay DIR` tree on top. The overlay wins every conflict; where it
 * puts a directory over a joined symlink, the symlink is expanded into a real directory whose other children
 * still link into the store, so `/etc/app.conf` from the overlay and `/etc/ssl` from a root can live side by side
 * (in nixpkgs extraCommands could not write there at all: the link points into the read-only store).
 */
export interface RootEntry {
  /** path relative to `/`, no leading or trailing slash */
  path: string;
  type: 'dir' | 'symlink' | 'file';
  mode: number;
  /** symlinks: the target */
  target?: string;
  /** overlay regular files: where to read the bytes, and the size they must have */
  fsPath?: string;
  size?: number;
  /** overlay entries: the lstat, for the cache fingerprint */
  stat?: Stats;
}

interface StoreSource {
  src: string;
  isDir: boolean;
}

export function planRootEntries(roots: string[], overlay: string | undefined, toFs: (storePath: string) => string): RootEntry[] {
  const out: RootEntry[] = [];
  const dirRoots = roots.filter((r) => lstatOr(toFs(r)).isDirectory());
  join('', dirRoots, overlay, toFs, out);
  for (const e of out) {
    // /nix and /nix/store come from the closure; a second /nix tree would make the layer ambiguous
    if (e.path === 'nix' || e.path.startsWith('nix/'))
      throw usageError(
        e.stat
          ? `--overlay ${overlay}: it has a top-level "nix" entry; /nix holds the image's store paths (add files elsewhere)`
          : `--path root has a top-level "nix" entry that would shadow /nix/store in the image`,
      );
  }
  return out.sort((a, b) => compareTarPaths(a.path, b.path));
}

function join(rel: string, sources: string[], overlayDir: string | undefined, toFs: (p: string) => string, out: RootEntry[]): void {
  const fromStore = new Map<string, StoreSource[]>();
  for (const src of sources) {
    for (const name of readdirOr(toFs(src))) {
      const child = `${src}/${name}`;
      const list = fromStore.get(name) ?? [];
      list.push({ src: child, isDir: lstatOr(toFs(child)).isDirectory() });
      fromStore.set(name, list);
    }
  }
  const fromOverlay = new Map<string, { fsPath: string; st: Stats }>();
  if (overlayDir) for (const name of readdirOr(overlayDir)) fromOverlay.set(name, { fsPath: `${overlayDir}/${name}`, st: lstatOr(`${overlayDir}/${name}`) });

  for (const name of new Set([...fromStore.keys(), ...fromOverlay.keys()])) {
    const path = rel ? `${rel}/${name}` : name;
    const list = fromStore.get(name) ?? [];
    const ov = fromOverlay.get(name);
    if (ov) {
      const mode = ov.st.mode & 0o7777;
      if (ov.st.isDirectory()) {
        out.push({ path, type: 'dir', mode, stat: ov.st });
        join(
          path,
          list.filter((x) => x.isDir).map((x) => x.src),
          ov.fsPath,
          toFs,
          out,
        );
      } else if (ov.st.isSymbolicLink()) {
        out.push({ path, type: 'symlink', mode, target: readlinkSync(ov.fsPath), stat: ov.st });
      } else if (ov.st.isFile()) {
        out.push({ path, type: 'file', mode, fsPath: ov.fsPath, size: ov.st.size, stat: ov.st });
      } else {
        throw usageError(`--overlay: ${ov.fsPath} is not a file, directory or symlink`);
      }
    } else if (list.length > 1 && list.every((x) => x.isDir)) {
      out.push({ path, type: 'dir', mode: 0o755 });
      join(
        path,
        list.map((x) => x.src),
        undefined,
        toFs,
        out,
      );
    } else {
      out.push({ path, type: 'symlink', mode: 0o777, target: list[0]!.src });
    }
  }
}

/**
 * What the image tag and the layer cache key must change with. Overlay file contents are hashed here, a second
 * read of bytes the layer writer reads again, because the default tag is needed before the layer exists and a tag
 * that stayed the same when /etc/app.conf changed would let a runtime reuse a stale image (overlays are
 * extraCommands-sized, so the extra read is cheap, and with an explicit NAME:TAG it is skipped). The store
 * part needs no such read: store paths are immutable and named by hash. inode/ctime go into the tree hash so a
 * cached diffID never outlives an edit of the overlay.
 */
export function rootFingerprint(entries: RootEntry[], withContent: boolean): { content: string; tree: string } {
  const content = createHash('sha256');
  const tree = createHash('sha256');
  for (const e of entries) {
    const line = `${e.path}\0${e.type}\0${e.mode}\0${e.target ?? ''}\0${e.size ?? 0}\0`;
    content.update(line);
    tree.update(line);
    if (e.stat) tree.update(`${e.stat.ino}\0${e.stat.mtimeMs}\0${e.stat.ctimeMs}\0`);
    if (withContent && e.type === 'file') hashFileInto(content, e.fsPath!);
  }
  return { content: content.digest('hex'), tree: tree.digest('hex') };
}

/** Chunked, so a large overlay file never sits in memory whole. */
function hashFileInto(h: Hash, path: string): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } catch (err) {
    throw new NixregError(`cannot read ${path}: ${describeSystemError(err)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function lstatOr(p: string): Stats {
  try {
    return lstatSync(p);
  } catch (err) {
    throw new NixregError(`cannot read ${p}: ${describeSystemError(err)}`);
  }
}

function readdirOr(p: string): string[] {
  try {
    return readdirSync(p);
  } catch (err) {
    throw new NixregError(`cannot read ${p}: ${describeSystemError(err)}`);
  }
}
