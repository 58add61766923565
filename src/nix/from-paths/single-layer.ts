import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { describeSystemError, usageError } from '../../errors.js';
import { endOfArchive, padTo512, pythonPaxHeaderLength } from '../../tar/python-pax.js';
import { closureGraph, resolveRoot } from '../closure.js';
import { compareCodePoints, readGraphFile } from '../layering/graph.js';
import { storeFsPath } from '../store-root.js';
import {
  LayerCache,
  WritableSink,
  parseStreamConf,
  planStoreLayer,
  seekableStdoutSink,
  writeAtomicFile,
  storeLayerChunks,
  writeImage,
  type ImageLayer,
  type PreparedImage,
  type StoreLayerPlan,
  type StreamResult,
} from '../stream/index.js';
import { DEFAULT_TIME, contentTag, hostGoArch, normalizeTime, serializeConf, sortKeysDeep, storePathsIn, type ConfJson } from './conf.js';
import { closureOf, splitName } from './prepare.js';
import { planRootEntries, rootFingerprint, type RootEntry } from './single-layer-root.js';

/**
 * `nixreg build --single-layer`: dockerTools.buildImage's shape without its VM or `tar -r` steps. ONE layer holds
 * the `--path` roots joined into `/` (symlinks, like `contents`), the `--overlay DIR` tree on top (what
 * `extraCommands` would have created) and the whole closure under /nix/store.
 *
 * Functionally equivalent to buildImage, NOT byte-identical: nixpkgs writes a GNU tar with relative names in two
 * passes (`tar -c` of the root, then `tar -r` of the store paths), copies copyToRoot's files instead of linking
 * them, and adds a legacy `<id>/json` with a tarsum checksum. Here the layer is one Python-PAX tar like
 * streamLayeredImage's store layers (absolute names, component-wise sorted, hard links stored as files) and the
 * archive is a streamLayeredImage-style docker-archive, so the same writer, digest cache and push path serve it.
 * Ownership follows buildImage: store paths 0:0, the root entries `--uid/--gid`; /nix and /nix/store are 0555.
 * Deterministic: same inputs (store contents, overlay bytes, flags) give the same bytes on every run.
 */
export interface SingleLayerOptions {
  name: string;
  paths: string[];
  overlay?: string;
  config?: Record<string, unknown>;
  architecture?: string;
  variant?: string;
  created?: string;
  mtime?: string;
  uid?: number;
  gid?: number;
  graphFile?: string;
  storeRoot?: string;
  storeDir?: string;
}

export interface PreparedSingleLayer {
  image: PreparedImage;
  /** the closure in the layer, sorted */
  closure: string[];
  /** the streamLayeredImage-shaped conf the image JSON is written from (one store layer, no customisation layer) */
  confText: string;
}

type PlannedEntry = StoreLayerPlan['entries'][number];

export async function prepareSingleLayer(o: SingleLayerOptions): Promise<PreparedSingleLayer> {
  const storeDir = o.storeDir ?? '/nix/store';
  const { imageName, tag } = splitName(o.name);
  if (o.paths.length === 0) throw usageError('give at least one --path (a store path to put in the image)');
  const uid = checkId(o.uid ?? 0, '--uid');
  const gid = checkId(o.gid ?? 0, '--gid');
  const overlay = o.overlay === undefined ? undefined : resolve(o.overlay);
  if (overlay !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(overlay).isDirectory();
    } catch (err) {
      throw usageError(`--overlay ${o.overlay}: ${describeSystemError(err)}`);
    }
    if (!isDir) throw usageError(`--overlay ${o.overlay} is not a directory`);
  }
  const config = sortKeysDeep(o.config ?? {}) as Record<string, unknown>;
  const architecture = o.architecture ?? hostGoArch();
  const created = normalizeTime(o.created ?? DEFAULT_TIME, '--created');
  const mtime = normalizeTime(o.mtime ?? DEFAULT_TIME, '--mtime');

  const configRefs = storePathsIn(config, storeDir);
  let roots = o.paths;
  let graph;
  if (o.graphFile) graph = await readGraphFile(o.graphFile);
  else {
    if (o.storeRoot) throw usageError('--store-root needs --graph: the closure of a store that is not /nix/store cannot be asked from Nix');
    roots = await Promise.all(roots.map(resolveRoot));
    graph = await closureGraph([...roots, ...configRefs]);
  }
  for (const p of roots) if (!p.startsWith(storeDir + '/')) throw usageError(`--path ${p} is not a store path under ${storeDir}`);
  const closure = closureOf(graph, [...roots, ...configRefs], o.graphFile ?? 'the Nix store')
    .map((n) => n.path)
    .sort(compareCodePoints);

  const rootEntries = planRootEntries(roots, overlay, (p) => storeFsPath(p, o.storeRoot));
  const fp = rootFingerprint(rootEntries, tag === undefined);

  const base = {
    architecture,
    config,
    os: 'linux' as const,
    variant: o.variant ?? '',
    store_dir: storeDir,
    from_image: null,
    store_layers: [closure],
    customisation_layer: '',
  };
  const times = { created, mtime, uid: String(uid), gid: String(gid), uname: uid === 0 ? 'root' : '', gname: gid === 0 ? 'root' : '' };
  const repoTag = `${imageName}:${tag ?? contentTag({ ...base, ...times, customisation_layer: `single-layer:${fp.content}` })}`;
  const conf: ConfJson = { ...base, repo_tag: repoTag, ...times };
  const confText = serializeConf(conf);
  const parsed = parseStreamConf(confText, 'generated conf');

  const storePlan = await planStoreLayer(closure, { mtime: parsed.mtime, uid: 0, gid: 0, uname: 'root', gname: 'root', storeRoot: o.storeRoot });
  const rootOwner = { mtime: parsed.mtime, uid, gid, uname: times.uname, gname: times.gname };
  const plan = mergePlans(storePlan, rootEntries, rootOwner, fp.tree);
  const layer: ImageLayer = {
    kind: 'store',
    paths: closure,
    size: plan.size,
    open: () => Readable.from(storeLayerChunks(plan), { objectMode: false }),
    source: { plan },
  };
  return { image: { conf: parsed, layers: [layer], repoTag }, closure, confText };
}

/**
 * One plan: the root entries (sorted) with the store walk spliced in where `/nix` sorts. The store walk's own
 * `/nix`, `/nix/store` get buildImage's 0555. The fingerprint covers both parts, so the digest cache (keyed on it)
 * never mixes this layer up with a plain store layer of the same paths.
 */
function mergePlans(
  store: StoreLayerPlan,
  roots: RootEntry[],
  owner: { mtime: number; uid: number; gid: number; uname: string; gname: string },
  rootTree: string,
): StoreLayerPlan {
  const toPlanned = (e: RootEntry): PlannedEntry => ({
    info: {
      name: `/${e.path}`,
      type: e.type,
      mode: e.mode,
      size: e.type === 'file' ? e.size! : 0,
      ...(e.type === 'symlink' ? { linkname: e.target! } : {}),
      ...owner,
    },
    fsPath: Buffer.from(e.fsPath ?? ''),
  });
  const storeEntries = store.entries.map((e, i) => (i < 2 ? { ...e, info: { ...e.info, mode: 0o555 } } : e));
  const firstAfterNix = roots.findIndex((e) => Buffer.compare(Buffer.from(e.path.split('/')[0]!), Buffer.from('nix')) > 0);
  const cut = firstAfterNix < 0 ? roots.length : firstAfterNix;
  const entries = [...roots.slice(0, cut).map(toPlanned), ...storeEntries, ...roots.slice(cut).map(toPlanned)];
  // only the sizes of the root entries are new: headers + data + padding, same rule as planStoreLayer
  const size = tarSizeOf(entries);
  const fingerprint = createHash('sha256').update(`single-layer\0${store.fingerprint}\0${rootTree}\0${owner.uid}\0${owner.gid}`).digest('hex');
  return { paths: store.paths, options: store.options, entries, size, fingerprint };
}

function tarSizeOf(entries: PlannedEntry[]): number {
  let size = 0;
  for (const e of entries) size += pythonPaxHeaderLength(e.info) + e.info.size + padTo512(e.info.size);
  return size + endOfArchive(size).length;
}

function checkId(n: number, flag: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0x7fffffff) throw usageError(`${flag}: expected a non-negative integer, got ${n}`);
  return n;
}

export interface RunSingleLayerOptions extends SingleLayerOptions {
  /** image output file (atomic) or '-' for stdout */
  output?: string;
  /** refused: see runSingleLayerBuild */
  writeConf?: string;
  force?: boolean;
  cache?: boolean;
  log?: (line: string) => void;
}

/** Prepare (every check before any output exists), then write the docker-archive once, hashing the layer on the way. */
export async function runSingleLayerBuild(o: RunSingleLayerOptions): Promise<{ prepared: PreparedSingleLayer; result?: StreamResult }> {
  // a streamLayeredImage conf cannot describe one layer mixing the root and the store: nothing to write
  if (o.writeConf) throw usageError('--write-conf is for layered builds; --single-layer writes the image only (-o)');
  if (!o.output) throw usageError('give -o FILE (or - for stdout) for the image');
  const prepared = await prepareSingleLayer(o);
  if (!o.output) return { prepared };
  const opts = { cache: o.cache === false ? undefined : new LayerCache(), log: o.log };
  if (o.output === '-') {
    const sink = seekableStdoutSink(1) ?? new WritableSink(process.stdout, 'stdout', false);
    return { prepared, result: await writeImage(prepared.image, sink, opts) };
  }
  // the one file-output path of stream and build: atomic, layers hashed on the way and headers patched (FIFOs in order)
  const result = await writeAtomicFile(o.output, o.force, (sink) => writeImage(prepared.image, sink, opts));
  return { prepared, result };
}
