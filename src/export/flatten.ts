import type { Readable, Writable } from 'node:stream';
import { NixregError } from '../errors.js';
import { ancestorsOf, basenameOf, dirnameOf, joinPath, normaliseEntryPath, UnsafePathError } from './entry-path.js';
import { MalformedTarError, readLayerTar, type LayerEntryType, type LayerTarEntry } from './layer-tar-reader.js';
import { DirHeaders } from './dir-headers.js';
import { PathIndex, type PathIndexOptions } from './path-index.js';
import { TarOut, type OutHeader } from './tar-out.js';

/**
 * Flatten an image's layer tars into one root-filesystem tar (dockerTools.exportImage / `docker export`).
 *
 * WHY a top-down walk: layers are gigabytes and memory must not grow with file sizes. Walking the LAST layer first,
 * an entry is final the moment we see it unless a higher layer already decided its path (same path, a whiteout of
 * it or of an ancestor, an opaque ancestor, or a non-directory ancestor). So every byte is read once and copied
 * straight to the output; what we remember is a set of paths (memory grows with the number of entries only).
 *
 * Output order (the determinism contract): every non-directory in layer-walk order — the top layer's surviving
 * entries in that layer's tar order, then the next layer down, and so on —, then every directory, deepest first
 * (reverse path order), then the end of archive. WHY directories last: in layer-walk order a directory's children
 * come from several layers, so they would be interleaved with other directories; GNU tar restores a directory's
 * mtime when it leaves it and a later child would bump it again. With all directories after all files, and children
 * before parents, setting one directory's metadata never touches another's: GNU tar, umoci and Docker's applier all
 * create the missing parents first and give every directory exactly the mode/owner/mtime recorded here. Directory
 * metadata comes from the topmost layer that has the directory; the directory headers (not file data) are what is
 * held until the end.
 *
 * Hard links are the one place where "read once, top-down" needs care. A link `a -> b` in layer N names the inode
 * `b` has while layer N is applied: `b` earlier in layer N itself, else `b` from the layers below. The output keeps
 * every hard link AFTER the entry it points to and never points at a path whose final content differs:
 *  - `b` earlier in layer N and still visible: emitted as is (b was written just before).
 *  - `b` earlier in layer N but replaced/deleted by a higher layer: the link becomes a regular-file copy of layer N's
 *    `b` (what `docker export` of the merged tree gives). Its bytes are already behind us, so layer N is read a
 *    second time after its walk, for those entries only — rare, and never for images without such links.
 *  - `b` from a lower layer: the link waits until the walk reaches the topmost lower `b`; then it is emitted as a
 *    hard link to `b` if that `b` is visible, else as a copy of it (bytes read once, written under the link name).
 * Links into a directory, to a missing target, or to a target a layer in between deletes are errors.
 *
 * A path a layer lists more than once (`tar -r` appends): the last entry wins, as in docker export, containerd and
 * umoci; a non-directory is written again after its earlier copy (extractors keep the last), a directory keeps its
 * last header. A path that is a directory once and a non-directory once in the same layer is refused.
 *
 * Hostile input: names and link targets with ".." are refused, a leading "/" or "./" is normalised (see
 * entry-path.ts); an entry whose parent ends up a symlink or file — `a -> /etc` then `a/passwd`, in either order or
 * across layers — is refused; malformed headers are refused (layer-tar-reader.ts). Errors are one line naming the
 * layer and the entry. The output tar therefore only ever holds clean relative names under directories.
 * Parents that no layer lists (a layer may omit them) are added as 0755 root:root mtime 0, like the directories
 * Docker's layer applier creates for them.
 */

export interface FlattenInput {
  layerCount: number;
  /** The uncompressed layer tar; may be called twice for the same layer (hard-link copies, see above). */
  openLayer(index: number): Promise<Readable | AsyncIterable<Buffer>>;
  /** How errors name the layer, e.g. its diffID. */
  layerLabel(index: number): string;
  /** Where the path index lives once it outgrows memory (path-index.ts). */
  pathIndex?: PathIndexOptions;
}

export interface FlattenStats {
  entries: number;
  bytes: number;
  layersReread: number;
}

const SELF = 1; // lower entries at this very path are hidden
const CHILDREN = 2; // lower entries below this path are hidden

/** `occ`: which occurrence of the path in its layer (a layer may list a path more than once; the last one wins). */
type Origin = { inLayer: string; occ: number } | { lower: string };

interface SeenInLayer {
  type: LayerEntryType;
  visible: boolean;
  /** How many times the layer listed this path so far (1 for the first). */
  occ: number;
  /** For hard links: the inode they name (after following in-layer link chains). */
  origin?: Origin;
}

/** A hard link whose target's content is not in the output yet. Its own header supplies mode/owner/mtime. */
interface WaitingLink {
  name: string;
  entry: LayerTarEntry;
  fromLayer: string;
}

const q = (s: string): string => JSON.stringify(s);

const TYPES: readonly LayerEntryType[] = ['file', 'hardlink', 'symlink', 'char', 'block', 'dir', 'fifo'];

/**
 * The paths of one layer. An entry without a hard-link origin (nearly all of them) is stored as one small integer
 * (type, visibility, occurrence) in a PathIndex, whose memory stays flat past its threshold; hard links (rare)
 * keep their origin object in memory.
 */
class SeenMap {
  private readonly withOrigin = new Map<string, SeenInLayer>();
  constructor(private readonly packed: PathIndex) {}
  get(name: string): SeenInLayer | undefined {
    const o = this.withOrigin.get(name);
    if (o) return o;
    const v = this.packed.get(name);
    if (v === undefined) return undefined;
    return { type: TYPES[v & 7]!, visible: (v & 8) !== 0, occ: v >>> 4 };
  }
  set(name: string, v: SeenInLayer): void {
    if (v.origin) {
      this.withOrigin.set(name, v);
      return;
    }
    this.withOrigin.delete(name);
    this.packed.set(name, (TYPES.indexOf(v.type) | (v.visible ? 8 : 0) | (v.occ << 4)) >>> 0);
  }
  close(): void {
    this.packed.close();
  }
}

export async function flattenLayers(input: FlattenInput, output: Writable): Promise<FlattenStats> {
  const out = new TarOut(output);
  /** Marks from the layers above the one being walked. */
  const above = new PathIndex(input.pathIndex);
  /** Directories in the output so far. (A non-directory in the output never gets an entry below it: a higher one
   * hides everything under it, one of the same layer is refused, a lower one meets `requiredDirs`.) */
  const emittedDirs = new PathIndex(input.pathIndex);
  /** Paths that must end up directories because something is in the output below them → one such entry. */
  const requiredDirs = new Map<string, string>();
  /** Links from higher layers waiting for the content of a path in a lower layer. */
  const waiting = new Map<string, WaitingLink[]>();
  let layersReread = 0;
  /** Directory headers, written after all other entries (see "Output order"). */
  const dirs = new DirHeaders(input.pathIndex);

  const isHidden = (name: string): boolean => {
    if ((above.get(name) ?? 0) & SELF) return true;
    if ((above.get('') ?? 0) & CHILDREN) return true;
    for (const a of ancestorsOf(name)) if ((above.get(a) ?? 0) & CHILDREN) return true;
    return false;
  };

  const linkHeader = (l: WaitingLink, target: string) =>
    out.header({ name: l.name, type: 'hardlink', linkname: target, mode: l.entry.mode, uid: l.entry.uid, gid: l.entry.gid, mtime: l.entry.mtime });

  const entryHeader = (name: string, e: LayerTarEntry): OutHeader => ({
    name,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    size: e.size,
    linkname: e.type === 'symlink' ? e.linkname : undefined,
    devmajor: e.devmajor,
    devminor: e.devminor,
    xattrs: e.xattrs,
  });

  /** Write `e` (a non-directory, non-hardlink entry) under the first link's name, the other links as links to it. */
  async function materialise(e: LayerTarEntry, body: () => AsyncIterable<Buffer>, links: WaitingLink[]): Promise<void> {
    const [first, ...rest] = links;
    if (e.type === 'file') await out.file(entryHeader(first!.name, e), body());
    else await out.header(entryHeader(first!.name, e));
    for (const l of rest) await linkHeader(l, first!.name);
  }

  /** Walk one layer with its own path indexes, closed (their temp files gone) however the walk ends. */
  async function walkLayer(index: number): Promise<void> {
    const marks = above.sibling();
    const seen = new SeenMap(above.sibling());
    try {
      await walkLayerWith(index, marks, seen);
    } finally {
      seen.close();
      marks.close();
    }
  }

  async function walkLayerWith(index: number, marks: PathIndex, seen: SeenMap): Promise<void> {
    const label = input.layerLabel(index);
    const fail = (entry: string, msg: string) => new NixregError(`export: layer ${label}: entry ${q(entry)} ${msg}`);
    const mark = (p: string, m: number) => marks.or(p, m);
    // The bottom layer's own entries hide nothing (no layer below), unless a link from above still looks for
    // its target here: then the marks tell whether this layer deleted it. Skipping them halves the memory.
    const keepMarks = index > 0 || waiting.size > 0;
    const markEntry = (p: string, m: number) => keepMarks && mark(p, m);

    /** In-layer origins whose content is needed after all (their entry was hidden): filled by a re-read.
     * Keyed by occurrence then path (`2:x` is the second `x` of this layer). */
    const deferred = new Map<string, WaitingLink[]>();
    /** Links from above already given this layer's copy of a path: given the later copy again if one follows. */
    const servedFromAbove = new Map<string, WaitingLink[]>();
    /** A later copy of a path replaces an earlier hard link of this layer that is still waiting for its content. */
    const dropWaitingLink = (linkName: string) => {
      for (const m of [waitingFromHere, deferred])
        for (const [k, ls] of m) {
          const kept = ls.filter((l) => !(l.name === linkName && l.fromLayer === label));
          if (kept.length === ls.length) continue;
          if (kept.length) m.set(k, kept);
          else m.delete(k);
        }
    };
    /** Links of this layer into lower layers; join `waiting` only after this layer (a same-named entry later in
     * this layer must not satisfy them: it replaces the path after the link was made). */
    const waitingFromHere = new Map<string, WaitingLink[]>();
    const push = (m: Map<string, WaitingLink[]>, k: string, ls: WaitingLink[]) => m.set(k, [...(m.get(k) ?? []), ...ls]);

    /** Point links at the inode `origin`: now if it is in the output, else later. */
    async function linkTo(origin: Origin, links: WaitingLink[]): Promise<void> {
      if ('lower' in origin) {
        push(waitingFromHere, origin.lower, links);
        return;
      }
      if (seen.get(origin.inLayer)!.visible) for (const l of links) await linkHeader(l, origin.inLayer);
      else push(deferred, `${origin.occ}:${origin.inLayer}`, links);
    }

    function checkParents(name: string, e: LayerTarEntry): void {
      for (const a of ancestorsOf(name)) {
        if (emittedDirs.get(a) !== undefined) continue;
        if (!requiredDirs.has(a)) requiredDirs.set(a, `${q(name)} (layer ${label})`);
      }
      const child = requiredDirs.get(name);
      if (e.type !== 'dir' && child !== undefined)
        throw fail(name, `is a ${e.type}, but ${child} lies under it (entry under a symlinked or non-directory parent)`);
    }

    const reader = readLayerTar(await input.openLayer(index));
    let name = '';
    try {
      for await (const e of reader.entries()) {
        name = e.name;
        name = normaliseEntryPath(e.name);
        if (name === '') continue; // the root directory itself: not part of the exported tree
        const base = basenameOf(name);
        if (base.startsWith('.wh.')) {
          if (base === '.wh..wh..opq') mark(dirnameOf(name), CHILDREN);
          else if (!base.startsWith('.wh..wh.')) mark(joinPath(dirnameOf(name), base.slice(4)), SELF | CHILDREN);
          // other `.wh..wh.*` names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not files, never output
          continue;
        }
        const prev = seen.get(name);
        if (prev) {
          if (prev.type === 'dir' && e.type === 'dir') {
            // Repeated directory: its last header's mode/owner/mtime win (Docker's applier applies each header).
            if (prev.visible) dirs.add(entryHeader(name, e));
            continue;
          }
          if (prev.type === 'dir' || e.type === 'dir')
            throw fail(name, `appears twice in this layer, as a ${prev.type} and as a ${e.type}; a directory cannot be replaced within one layer`);
          // The same non-directory again (`tar -r` appends): the last entry wins, as in docker export, containerd
          // and umoci. It is written after the earlier copy, so extracting the output (GNU tar, Docker's applier)
          // also ends with the last one; hard links made in between keep naming the earlier copy.
          if (prev.type === 'hardlink' && prev.visible) dropWaitingLink(name);
        }
        const occ = (prev?.occ ?? 0) + 1;
        // Under a symlink/file of this very layer: hostile even if a higher layer hides both (never write through).
        for (const a of ancestorsOf(name)) {
          const at = seen.get(a)?.type;
          if (at !== undefined && at !== 'dir')
            throw fail(name, `lies under ${q(a)}, which is a ${at === 'hardlink' ? 'hard link' : at}, not a directory (refusing to write through it)`);
        }
        const hidden = isHidden(name);
        const fromAbove = waiting.get(name) ?? servedFromAbove.get(name);
        if (fromAbove) {
          waiting.delete(name);
          servedFromAbove.set(name, fromAbove);
        }

        if (e.type === 'hardlink') {
          let target: string;
          try {
            target = normaliseEntryPath(e.linkname);
          } catch (err) {
            throw fail(name, `is a hard link to ${q(e.linkname)}, which ${(err as Error).message}`);
          }
          if (target === '' || target === name) throw fail(name, `is a hard link to ${q(e.linkname)} (itself or the root)`);
          for (const a of ancestorsOf(target)) {
            const at = seen.get(a)?.type;
            if (at !== undefined && at !== 'dir') throw fail(name, `is a hard link to ${q(target)}, which lies under ${q(a)}, a ${at} in this layer`);
          }
          const t = seen.get(target);
          if (t?.type === 'dir') throw fail(name, `is a hard link to directory ${q(target)}`);
          const origin: Origin = t ? (t.origin ?? { inLayer: target, occ: t.occ }) : { lower: target };
          seen.set(name, { type: 'hardlink', visible: !hidden, occ, origin });
          if (!hidden) {
            checkParents(name, e);
            markEntry(name, SELF | CHILDREN);
            await linkTo(origin, [{ name, entry: e, fromLayer: label }]);
          }
          if (fromAbove) await linkTo(origin, fromAbove);
          continue;
        }

        seen.set(name, { type: e.type, visible: !hidden, occ });
        if (fromAbove && e.type === 'dir')
          throw new NixregError(
            `export: layer ${fromAbove[0]!.fromLayer}: entry ${q(fromAbove[0]!.name)} is a hard link to ${q(name)}, which is a directory in layer ${label}`,
          );
        if (hidden) {
          if (fromAbove) await materialise(e, reader.body, fromAbove);
          continue;
        }
        checkParents(name, e);
        if (e.type === 'dir') {
          emittedDirs.set(name, 1);
          requiredDirs.delete(name);
          markEntry(name, SELF);
          dirs.add(entryHeader(name, e));
          continue;
        }
        markEntry(name, SELF | CHILDREN);
        if (e.type === 'file') await out.file(entryHeader(name, e), reader.body());
        else await out.header(entryHeader(name, e));
        for (const l of fromAbove ?? []) await linkHeader(l, name);
      }
      if (deferred.size) {
        // Copies of entries this layer had but a higher layer replaced, for hard links that still need them.
        layersReread++;
        const again = readLayerTar(await input.openLayer(index));
        const wanted = new Map<string, number>();
        for (const k of deferred.keys()) {
          const p = k.slice(k.indexOf(':') + 1);
          wanted.set(p, 0);
        }
        for await (const e of again.entries()) {
          const n = normaliseEntryPath(e.name);
          const count = wanted.get(n);
          if (count === undefined) continue;
          wanted.set(n, count + 1);
          const key = `${count + 1}:${n}`;
          const links = deferred.get(key);
          if (!links || e.type === 'hardlink' || e.type === 'dir') continue;
          deferred.delete(key);
          await materialise(e, again.body, links);
        }
        if (deferred.size) throw new NixregError(`export: layer ${label} changed between two reads (hard-link targets vanished)`);
      }
    } catch (err) {
      if (err instanceof NixregError) throw err;
      if (err instanceof UnsafePathError) throw fail(name, err.message);
      if (err instanceof MalformedTarError) throw new NixregError(`export: layer ${label} ${err.message}${name ? ` (after entry ${q(name)})` : ''}`);
      throw err;
    }

    // A link from above whose target this layer deletes (without re-creating it) pointed at nothing.
    for (const [target, links] of waiting) {
      const gone = (marks.get(target) ?? 0) & SELF || [...ancestorsOf(target), ''].some((a) => (marks.get(a) ?? 0) & CHILDREN);
      if (gone)
        throw new NixregError(
          `export: layer ${links[0]!.fromLayer}: entry ${q(links[0]!.name)} is a hard link to ${q(target)}, which does not exist below it (layer ${label} deletes it or makes a parent a non-directory)`,
        );
    }
    if (index > 0) above.orAll(marks);
    for (const [t, ls] of waitingFromHere) push(waiting, t, ls);
  }

  try {
    for (let i = input.layerCount - 1; i >= 0; i--) await walkLayer(i);
  } catch (err) {
    dirs.close();
    throw err;
  } finally {
    above.close();
    emittedDirs.close();
  }

  for (const [target, links] of waiting)
    throw new NixregError(
      `export: layer ${links[0]!.fromLayer}: entry ${q(links[0]!.name)} is a hard link to ${q(target)}, which does not exist in the layers below it`,
    );
  for (const d of requiredDirs.keys()) dirs.add({ name: d, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0 });
  // Deepest first: a path sorts after every proper prefix of it, so descending order puts "a/b" before "a".
  for (const d of dirs.deepestFirst()) await out.header(d);
  await out.finish();
  return { entries: out.entries, bytes: out.offset, layersReread };
}
