import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, read, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import { NixregError, usageError, describeSystemError, ExitCode } from '../../errors.js';
import { encodePythonPaxHeader, endOfArchive, padTo512, pythonPaxHeaderLength, type PyTarInfo } from '../../tar/python-pax.js';
import { storeFsPath } from '../store-root.js';
import { layerCacheKey, type LayerCache, type LayerCacheEntry } from '../layer-cache.js';

/**
 * One store layer tar exactly as stream_layered_image.py's `archive_paths_to` writes it: `/nix/` and
 * `/nix/store/` (0755) first, then each store path and everything below it in component-wise sorted order,
 * absolute names, conf-driven mtime/uid/gid/uname/gname, modes as on disk, hard links stored as full files,
 * symlinks not followed, PAX headers decided like CPython's tarfile, padded to 10240 bytes.
 *
 * The layer is planned first (a metadata-only walk: lstat + readlink), which gives its exact size without
 * reading any file content; the bytes are then produced by `storeLayerChunks`, as often as a caller needs.
 */

/** Bump whenever a change here could change layer bytes: it invalidates every cached diffID. */
export const TAR_RULES_VERSION = 'python-tarfile-pax-v1';

export interface LayerOwner {
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
}

export interface StoreLayerOptions extends LayerOwner {
  /** Read `/nix/store/...` from `<storeRoot>/nix/store/...` (names in the tar do not change). */
  storeRoot?: string;
}

interface PlannedEntry {
  info: PyTarInfo;
  fsPath: Buffer; // only read for regular files
}

export interface StoreLayerPlan {
  readonly paths: readonly string[];
  readonly options: StoreLayerOptions;
  readonly entries: readonly PlannedEntry[];
  /** Exact byte length of the layer tar. */
  readonly size: number;
  /** sha256 over every entry's name, type, mode, size, inode, mtime and ctime: changes when the tree does. */
  readonly fingerprint: string;
}

const SLASH = Buffer.from('/');

type EntryKind = 'file' | 'dir' | 'symlink';

/**
 * The metadata walk behind both the plan and the fingerprint: each store path, then everything below it in
 * pathlib's component-wise order (siblings by UTF-8 bytes), no descent into symlinks. `visit` gets every entry
 * with its kind and link target; `onRoot` each store path first. Throws a usage error naming the first store path
 * that does not exist, so callers can validate a whole image before writing anything.
 */
function walkStorePaths(
  paths: readonly string[],
  options: StoreLayerOptions,
  visit: (name: Buffer, st: Stats, kind: EntryKind, mode: number, size: number, linkname: Buffer | undefined) => void,
  onRoot: (fsPath: Buffer, nameLength: number) => void = () => {},
): void {
  // Metadata calls are synchronous on purpose: for a store tree in the page cache an lstat costs microseconds,
  // while the promise API spends ~100 µs of bookkeeping per call (measured: 4000-file layer walk 420 ms -> 30 ms).
  const add = (name: Buffer, fsPath: Buffer, st: Stats): boolean => {
    const mode = st.mode & 0o7777;
    if (st.isFile()) visit(name, st, 'file', mode, st.size, undefined);
    else if (st.isDirectory()) visit(name, st, 'dir', mode, 0, undefined);
    else if (st.isSymbolicLink()) visit(name, st, 'symlink', mode, 0, readlinkSync(fsPath, { encoding: 'buffer' }));
    else throw usageError(`${fsPath.toString()}: unsupported file type in a store path (only files, directories and symlinks)`);
    return st.isDirectory();
  };
  const walk = (name: Buffer, fsPath: Buffer): void => {
    const children = readdirSync(fsPath, { encoding: 'buffer' });
    // Component-wise order of pathlib.Path: siblings by code point = UTF-8 byte order (not UTF-16 order).
    children.sort(Buffer.compare);
    for (const child of children) {
      const childName = Buffer.concat([name, SLASH, child]);
      const childFs = Buffer.concat([fsPath, SLASH, child]);
      if (add(childName, childFs, lstatSync(childFs))) walk(childName, childFs); // rglob: no descent into symlinks
    }
  };
  for (const storePath of paths) {
    // pathlib.Path normalisation (no '//', '.', trailing '/'), then gettarinfo strips and we re-add the root '/'.
    const norm =
      '/' +
      storePath
        .split('/')
        .filter((c) => c !== '' && c !== '.')
        .join('/');
    const fsPath = Buffer.from(storeFsPath(norm, options.storeRoot));
    let st: Stats;
    try {
      st = lstatSync(fsPath);
    } catch (err) {
      throw usageError(
        `store path ${storePath} does not exist${options.storeRoot ? ` under --store-root ${options.storeRoot}` : ''} (${describeSystemError(err)})`,
      );
    }
    const name = Buffer.from(norm);
    onRoot(fsPath, name.length);
    try {
      if (add(name, fsPath, st)) walk(name, fsPath);
    } catch (err) {
      if (err instanceof NixregError) throw err;
      throw new NixregError(`cannot read store path ${storePath}: ${describeSystemError(err)}`);
    }
  }
}

/** The fingerprint's part for one entry: name, type, mode, size, inode, mtime, ctime (and link target). */
function fingerprintEntry(fp: Hash, name: Buffer, st: Stats, kind: EntryKind, mode: number, size: number, linkname: Buffer | undefined): void {
  fp.update(name).update(`\0${kind}\0${mode}\0${size}\0${st.ino}\0${st.mtimeMs}\0${st.ctimeMs}\0`);
  if (linkname) fp.update(linkname).update('\0');
}

/**
 * Only the fingerprint planStoreLayer would compute (the same walk and bytes, see the test): what a warm push under
 * --store-root needs to look its layers up in the cache, without the tar layout of every entry (~20% of the walk).
 */
export function fingerprintStoreLayer(paths: readonly string[], options: StoreLayerOptions): string {
  const fp = createHash('sha256');
  walkStorePaths(paths, options, (name, st, kind, mode, size, linkname) => fingerprintEntry(fp, name, st, kind, mode, size, linkname));
  return fp.digest('hex');
}

/** Walk the store paths (metadata only) in archive order: the layer's entries, exact size and fingerprint. */
export async function planStoreLayer(paths: readonly string[], options: StoreLayerOptions): Promise<StoreLayerPlan> {
  const owner = { mtime: options.mtime, uid: options.uid, gid: options.gid, uname: options.uname, gname: options.gname };
  // The plan is kept for the whole run (every layer is planned up front), so it is stored compactly: one
  // Buffer of all names plus typed arrays instead of an {info, fsPath} object with two Buffers per entry (measured
  // on 100 layers of 45.9k entries after a full GC: 25 MB of heap and buffers before, under 8 MB after).
  const c = new CompactBuilder();
  c.add(Buffer.from('/nix'), KIND_DIR, 0o755, 0, -1);
  c.add(Buffer.from('/nix/store'), KIND_DIR, 0o755, 0, -1);
  let root = -1;
  let size = 0;
  const fp = createHash('sha256');
  walkStorePaths(
    paths,
    options,
    (name, st, kind, mode, entrySize, linkname) => {
      const info: PyTarInfo = { name, type: kind, mode, size: entrySize, ...owner, ...(linkname ? { linkname } : {}) };
      c.add(name, KIND_OF[kind], mode, entrySize, root, linkname);
      size += pythonPaxHeaderLength(info) + entrySize + padTo512(entrySize);
      fingerprintEntry(fp, name, st, kind, mode, entrySize, linkname);
    },
    (fsPath, nameLength) => (root = c.addRoot(fsPath, nameLength)),
  );
  // the two leading directories' headers (always one 512-byte block: short ASCII names)
  size += pythonPaxHeaderLength({ name: '/nix', type: 'dir', mode: 0o755, size: 0, ...owner });
  size += pythonPaxHeaderLength({ name: '/nix/store', type: 'dir', mode: 0o755, size: 0, ...owner });
  size += endOfArchive(size).length;
  return compactPlan([...paths], options, c.finish(owner), size, fp.digest('hex'));
}

/** A separate function so the plan's getter closes over the finished entries only, not over the walk's builder. */
function compactPlan(paths: string[], options: StoreLayerOptions, compact: CompactEntries, size: number, fingerprint: string): StoreLayerPlan {
  let entries: PlannedEntry[] | undefined;
  const plan: StoreLayerPlan = {
    paths,
    options,
    // materialised only for callers that want objects (single-layer's mergePlans); storeLayerChunks reads `compact`
    get entries() {
      return (entries ??= Array.from({ length: compact.count }, (_, i) => compact.entry(i)));
    },
    size,
    fingerprint,
  };
  compactOf.set(plan, compact);
  return plan;
}

const KIND_FILE = 0;
const KIND_DIR = 1;
const KIND_SYMLINK = 2;
const KIND_OF = { file: KIND_FILE, dir: KIND_DIR, symlink: KIND_SYMLINK } as const;
const TYPE_OF = ['file', 'dir', 'symlink'] as const;
const EMPTY = Buffer.alloc(0);

/** Plans made by planStoreLayer carry their entries here; hand-made plans (mergePlans) only have `entries`. */
const compactOf = new WeakMap<StoreLayerPlan, CompactEntries>();

/**
 * A layer's entries without an object per entry. An entry's file-system path is its store path's file-system
 * path (`roots`) followed by the rest of its name, so only names are stored.
 */
class CompactEntries {
  constructor(
    readonly count: number,
    private readonly names: Buffer,
    private readonly ends: Uint32Array,
    private readonly kinds: Uint8Array,
    private readonly modes: Uint16Array,
    private readonly sizes: Float64Array,
    private readonly rootOf: Int32Array,
    private readonly roots: Array<{ fs: Buffer; nameLen: number }>,
    private readonly links: Map<number, Buffer>,
    private readonly owner: LayerOwner,
  ) {}
  entry(i: number): PlannedEntry {
    const name = this.names.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!);
    const type = TYPE_OF[this.kinds[i]!]!;
    const info: PyTarInfo = { name, type, mode: this.modes[i]!, size: this.sizes[i]!, ...this.owner };
    if (type === 'symlink') info.linkname = this.links.get(i)!;
    const r = this.rootOf[i]!;
    // only regular files are ever read
    const fsPath = type === 'file' && r >= 0 ? Buffer.concat([this.roots[r]!.fs, name.subarray(this.roots[r]!.nameLen)]) : EMPTY;
    return { info, fsPath };
  }
}

class CompactBuilder {
  // Names go straight into one growing buffer rather than being kept as a Buffer each until the end: what survives
  // the walk's young-generation collections is then a few large arrays, and V8 does not grow its young generation
  // (heapTotal) for tens of thousands of small survivors.
  private names = Buffer.allocUnsafeSlow(64 * 1024);
  private nameBytes = 0;
  private ends: number[] = [];
  private kinds: number[] = [];
  private modes: number[] = [];
  private sizes: number[] = [];
  private rootOf: number[] = [];
  private roots: Array<{ fs: Buffer; nameLen: number }> = [];
  private links = new Map<number, Buffer>();
  addRoot(fs: Buffer, nameLen: number): number {
    this.roots.push({ fs: Buffer.from(fs), nameLen });
    return this.roots.length - 1;
  }
  add(name: Buffer, kind: number, mode: number, size: number, root: number, linkname?: Buffer): void {
    if (linkname) this.links.set(this.kinds.length, Buffer.from(linkname));
    if (this.nameBytes + name.length > this.names.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.names.length * 2, this.nameBytes + name.length));
      this.names.copy(bigger, 0, 0, this.nameBytes);
      this.names = bigger;
    }
    this.nameBytes += name.copy(this.names, this.nameBytes);
    this.ends.push(this.nameBytes);
    this.kinds.push(kind);
    this.modes.push(mode);
    this.sizes.push(size);
    this.rootOf.push(root);
  }
  finish(owner: LayerOwner): CompactEntries {
    // an exact-size copy (allocUnsafeSlow: private memory, never a slice pinning a shared pool slab)
    const all = Buffer.allocUnsafeSlow(this.nameBytes);
    this.names.copy(all, 0, 0, this.nameBytes);
    return new CompactEntries(
      this.kinds.length,
      all,
      Uint32Array.from(this.ends),
      Uint8Array.from(this.kinds),
      Uint16Array.from(this.modes),
      Float64Array.from(this.sizes),
      Int32Array.from(this.rootOf),
      this.roots,
      this.links,
      owner,
    );
  }
}

/** Entries in archive order, as objects made on the fly (short-lived: young-generation garbage). */
function* plannedEntries(plan: StoreLayerPlan): Generator<PlannedEntry> {
  const compact = compactOf.get(plan);
  if (!compact) {
    yield* plan.entries;
    return;
  }
  for (let i = 0; i < compact.count; i++) yield compact.entry(i);
}

/** Cache key of a planned layer: inputs + tar rules + the tree fingerprint (free: the walk happens anyway). */
export function storeLayerCacheKey(plan: Pick<StoreLayerPlan, 'paths' | 'options' | 'fingerprint'>): string {
  const o = plan.options;
  return layerCacheKey({
    rules: TAR_RULES_VERSION,
    paths: plan.paths,
    mtime: o.mtime,
    uid: o.uid,
    gid: o.gid,
    uname: o.uname,
    gname: o.gname,
    root: o.storeRoot ?? null,
    tree: plan.fingerprint,
  });
}

const BATCH = 1024 * 1024;
const CHUNK = BATCH;

/*
 * Recycled chunk buffers. Layer bytes pass through fresh 1 MiB buffers; V8 frees a dead ArrayBuffer only
 * at a full GC, which external memory triggers only after ~64 MB of it has piled up, so garbage chunks, not live
 * data, were most of the peak RSS of `stream` and `push`. A consumer that knows nothing else holds a chunk any
 * more (FileSink after its write; the push compressor after deflating it) hands it back with releaseLayerChunk;
 * chunks never handed back are simply garbage-collected as before.
 */
const freeChunks: ArrayBuffer[] = [];
const lentChunks = new WeakSet<object>();
const MAX_FREE_CHUNKS = 16;

function takeChunk(): Buffer {
  const ab = freeChunks.pop();
  // allocUnsafeSlow: an ArrayBuffer of its own (never a slice of Node's shared pool), so it can be recycled whole
  const b = ab ? Buffer.from(ab, 0, CHUNK) : Buffer.allocUnsafeSlow(CHUNK);
  lentChunks.add(b.buffer);
  return b;
}

/**
 * Gives a chunk yielded by storeLayerChunks back for reuse. Call only when no reference to it (or to any view of
 * its memory) remains anywhere: its bytes will be overwritten. Other buffers, and a second release, are ignored.
 */
export function releaseLayerChunk(chunk: Buffer): void {
  const ab = chunk.buffer;
  if (!lentChunks.has(ab)) return;
  lentChunks.delete(ab);
  if (freeChunks.length < MAX_FREE_CHUNKS) freeChunks.push(ab as ArrayBuffer);
}

/**
 * The layer's bytes, in chunks of up to 1 MiB. Headers and small files are assembled in place in a 1 MiB
 * batch buffer (small files are read synchronously straight into it: page-cache reads of small files are
 * dominated by per-call overhead and allocation, which this avoids — measured ~3x faster on a 4000-file layer);
 * large files are read asynchronously with one chunk of read-ahead so reads overlap hashing and writing.
 * Every yielded buffer is the consumer's (it may keep it, or give it back with releaseLayerChunk).
 * Fails if a file's size differs from the plan.
 */
export async function* storeLayerChunks(plan: StoreLayerPlan): AsyncGenerator<Buffer> {
  let batch: Buffer | undefined;
  let used = 0;
  let total = 0;
  const flush = (): Buffer => {
    const out = (batch ?? Buffer.alloc(0)).subarray(0, used);
    total += used;
    batch = undefined;
    used = 0;
    return out;
  };
  for (const e of plannedEntries(plan)) {
    const header = encodePythonPaxHeader(e.info);
    const size = e.info.type === 'file' ? e.info.size : 0;
    const withData = header.length + size + padTo512(size);
    const small = withData <= BATCH; // fits a batch: read synchronously in place
    const need = small ? withData : header.length;
    if (used + need > BATCH && used > 0) yield flush();
    batch ??= takeChunk();
    used += header.copy(batch, used);
    if (e.info.type !== 'file') continue;
    if (small) {
      readSmallFileInto(e.fsPath, size, batch, used);
      used += size;
    } else {
      yield flush();
      for await (const chunk of readLargeFile(e.fsPath, size)) {
        total += chunk.length;
        yield chunk;
      }
      batch = takeChunk();
    }
    const pad = padTo512(size);
    batch.fill(0, used, used + pad);
    used += pad;
  }
  const end = endOfArchive(total + used);
  if (used + end.length > BATCH) yield flush();
  batch ??= takeChunk();
  used += end.copy(batch, used);
  const last = flush();
  if (total !== plan.size) throw new NixregError(`internal error: layer of ${plan.paths[0]} came out ${total} bytes, planned ${plan.size}`);
  yield last;
}

function changed(fsPath: Buffer, why: string): NixregError {
  return new NixregError(`${fsPath.toString()} changed while the layer was being written (${why}); is the store being modified?`, ExitCode.failure);
}

function openForRead(fsPath: Buffer): number {
  try {
    return openSync(fsPath, 'r');
  } catch (err) {
    throw new NixregError(`cannot read ${fsPath.toString()}: ${describeSystemError(err)}`);
  }
}

function readSmallFileInto(fsPath: Buffer, size: number, buf: Buffer, at: number): void {
  const fd = openForRead(fsPath);
  try {
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, at + off, size - off, off);
      if (n === 0) throw changed(fsPath, `expected ${size} bytes, found ${off}`);
      off += n;
    }
    const now = fstatSync(fd).size;
    if (now !== size) throw changed(fsPath, `size is now ${now}, planned ${size}`);
  } finally {
    closeSync(fd);
  }
}

const readAsync = promisify(read);

async function* readLargeFile(fsPath: Buffer, size: number): AsyncGenerator<Buffer> {
  const fd = openForRead(fsPath);
  try {
    const readAt = async (at: number): Promise<Buffer> => {
      const len = Math.min(CHUNK, size - at);
      const buf = takeChunk().subarray(0, len);
      let off = 0;
      while (off < len) {
        const { bytesRead } = await readAsync(fd, buf, off, len - off, at + off);
        if (bytesRead === 0) throw changed(fsPath, `expected ${size} bytes, found ${at + off}`);
        off += bytesRead;
      }
      return buf;
    };
    let pos = 0;
    let next: Promise<Buffer> | undefined = readAt(0);
    try {
      while (next) {
        const cur = await next;
        pos += cur.length;
        next = pos < size ? readAt(pos) : undefined;
        yield cur;
      }
    } finally {
      await next?.catch(() => {}); // never close the fd under an in-flight read
    }
    if (fstatSync(fd).size !== size) throw changed(fsPath, `size is now ${fstatSync(fd).size}, planned ${size}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The layer as a byte stream (for `nixreg push`: compress and upload without writing an archive). Pass a plan
 * (from planStoreLayer, which also gives the size) or the paths and options (planned when the stream starts).
 */
export function generateStoreLayer(plan: StoreLayerPlan): Readable;
export function generateStoreLayer(paths: readonly string[], options: StoreLayerOptions): Readable;
export function generateStoreLayer(planOrPaths: StoreLayerPlan | readonly string[], options?: StoreLayerOptions): Readable {
  if (!Array.isArray(planOrPaths)) return Readable.from(storeLayerChunks(planOrPaths as StoreLayerPlan), { objectMode: false });
  const paths = planOrPaths as readonly string[];
  return Readable.from(
    (async function* () {
      yield* storeLayerChunks(await planStoreLayer(paths, options!));
    })(),
    { objectMode: false },
  );
}

/** Exact byte size of the layer for these paths (metadata walk only). */
export async function layerSize(paths: readonly string[], options: StoreLayerOptions): Promise<number> {
  return (await planStoreLayer(paths, options)).size;
}

/** Counters that prove how many times layer bytes were produced (tests and benchmarks read them). */
export interface LayerPassStats {
  hashPasses: number; // full generations whose only purpose was the digest
  writePasses: number; // generations written to an output (hashed on the way or not)
  cacheHits: number;
}

/**
 * diffID and size of a planned layer: from the cache when possible, else by one hashing pass (whose result is
 * cached). Use when the digest must be known before the bytes can be sent (registry pushes, non-seekable output).
 */
export async function storeLayerDigest(plan: StoreLayerPlan, cache?: LayerCache, stats?: LayerPassStats): Promise<LayerCacheEntry> {
  const key = cache ? storeLayerCacheKey(plan) : '';
  if (cache) {
    const hit = await cache.get(key);
    if (hit && hit.size === plan.size) {
      if (stats) stats.cacheHits++;
      return hit;
    }
  }
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of storeLayerChunks(plan)) {
    h.update(chunk);
    size += chunk.length;
    releaseLayerChunk(chunk); // hashed and dropped: nothing else holds it
  }
  if (stats) stats.hashPasses++;
  const entry = { diffID: 'sha256:' + h.digest('hex'), size };
  if (cache) await cache.put(key, entry);
  return entry;
}
