import { join, resolve } from 'node:path';
import { usageError } from '../../errors.js';
import { closureGraph, resolveRoot } from '../closure.js';
import { compareCodePoints, readGraphFile, type GraphNode } from '../layering/graph.js';
import { availableLayers, computeStoreLayers, type LayeringAlgorithm } from '../layering/index.js';
import { storeFsPath } from '../store-root.js';
import { DEFAULT_TIME, contentTag, hostGoArch, normalizeTime, serializeConf, sortKeysDeep, storePathsIn, type ConfJson } from './conf.js';
import { planCustomisationEntries, type CustomisationLayer } from './customisation-layer.js';
import { placeCustomisationLayer } from './place-layer.js';
import { countBaseLayers } from './from-image.js';
import { imageNodes } from './image-nodes.js';

export interface BuildOptions {
  /** NAME or NAME:TAG (the name is lowercased, as dockerTools does) */
  name: string;
  /** contents: store paths whose top-level dirs are linked into / (customisation layer) */
  paths: string[];
  config?: Record<string, unknown>;
  architecture?: string;
  variant?: string;
  maxLayers?: number;
  algorithm?: LayeringAlgorithm;
  fromImage?: string;
  created?: string;
  mtime?: string;
  /** exportReferencesGraph JSON to use instead of asking Nix */
  graphFile?: string;
  storeRoot?: string;
  storeDir?: string;
  /** where the customisation layer directory goes (default: the nixreg cache) */
  layerDir?: string;
}

export interface PreparedBuild {
  conf: ConfJson;
  confText: string;
  customisation: CustomisationLayer;
  graph: GraphNode[];
}

/**
 * Everything streamLayeredImage's Nix side does, minus Nix: closure graph, layering with the same helper nodes,
 * the customisation layer (written to disk, since the conf names a directory holding layer.tar), and the conf.
 */
export async function prepareBuild(o: BuildOptions): Promise<PreparedBuild> {
  const storeDir = o.storeDir ?? '/nix/store';
  const { imageName, tag } = splitName(o.name);
  if (o.paths.length === 0) throw usageError('give at least one --path (a store path to put in the image)');
  availableLayers(o.maxLayers ?? 100, 0); // flag errors before any work
  const config = sortKeysDeep(o.config ?? {}) as Record<string, unknown>;
  const architecture = o.architecture ?? hostGoArch();
  const variant = o.variant ?? '';
  const created = normalizeTime(o.created ?? DEFAULT_TIME, '--created');
  const mtime = normalizeTime(o.mtime ?? DEFAULT_TIME, '--mtime');

  const configRefs = storePathsIn(config, storeDir);
  let roots = o.paths;
  let full: GraphNode[];
  if (o.graphFile) {
    full = await readGraphFile(o.graphFile);
  } else {
    if (o.storeRoot) throw usageError('--store-root needs --graph: the closure of a store that is not /nix/store cannot be asked from Nix');
    // ./result-style GC-root links name the store path they point to
    roots = await Promise.all(roots.map(resolveRoot));
    full = await closureGraph([...roots, ...configRefs]);
  }
  for (const p of roots) if (!p.startsWith(storeDir + '/')) throw usageError(`--path ${p} is not a store path under ${storeDir}`);
  const graph = closureOf(full, [...roots, ...configRefs], o.graphFile ?? 'the Nix store');

  const entries = await planCustomisationEntries(roots, (p) => storeFsPath(p, o.storeRoot));
  const customisation = await placeCustomisationLayer(entries, {
    name: imageName.split('/').pop()!,
    storeDir,
    storeRoot: o.storeRoot,
    baseDir: o.layerDir,
    useNix: !o.graphFile,
  });
  const contentRefs = [...new Set(entries.filter((e) => e.type === 'symlink').map((e) => storePathOf(e.target!, storeDir)))];

  const baseJson = JSON.stringify(sortKeysDeep({ architecture, config, os: 'linux', variant }));
  const helpers = imageNodes({
    storeDir,
    baseName: imageName.split('/').pop()!,
    baseJson,
    configRefs,
    customisationTarSize: customisation.size,
    customisationChecksum: customisation.checksum,
    contentRefs,
    popularity: o.algorithm === 'popularity',
  });
  const fromImageLayers = o.fromImage ? await countBaseLayers(o.fromImage) : 0;
  const storeLayers = computeStoreLayers(
    [...graph, ...helpers.nodes].sort((a, b) => compareCodePoints(a.path, b.path)),
    {
      maxLayers: o.maxLayers ?? 100,
      fromImageLayers,
      algorithm: o.algorithm ?? 'auto',
      exclude: helpers.exclude,
    },
  );

  // jq's key order: repo_tag sits between customisation_layer and created; the content tag hashes the rest
  const head = {
    architecture,
    config,
    os: 'linux' as const,
    variant,
    store_dir: storeDir,
    from_image: o.fromImage ? fromImageName(o.fromImage, storeDir, o.storeRoot) : null,
    store_layers: storeLayers,
    customisation_layer: customisation.dir,
  };
  const tail = { created, mtime, uid: '0', gid: '0', uname: 'root', gname: 'root' };
  const repoTag = `${imageName}:${tag ?? contentTag({ ...head, ...tail })}`;
  const conf: ConfJson = { ...head, repo_tag: repoTag, ...tail };
  return { conf, confText: serializeConf(conf), customisation, graph };
}

/** NAME[:TAG]; a `:` inside a registry host:port is not a tag separator. */
export function splitName(nameTag: string): { imageName: string; tag?: string } {
  const slash = nameTag.lastIndexOf('/');
  const colon = nameTag.lastIndexOf(':');
  const [name, tag] = colon > slash ? [nameTag.slice(0, colon), nameTag.slice(colon + 1)] : [nameTag, undefined];
  if (!name) throw usageError(`--name "${nameTag}" has no image name`);
  if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw usageError(`--name "${nameTag}": "${tag}" is not a valid tag`);
  return { imageName: name.toLowerCase(), tag };
}

/**
 * The conf names from_image, and the stream reads it through --store-root like every other path; so under a store
 * root the archive must be inside it and is named by its store path.
 */
function fromImageName(file: string, storeDir: string, storeRoot?: string): string {
  const abs = resolve(file);
  if (!storeRoot) return abs;
  const root = resolve(storeRoot);
  if (!abs.startsWith(root + storeDir + '/'))
    throw usageError(`--from-image ${file}: with --store-root the base archive must be inside ${join(root, storeDir)}`);
  return abs.slice(root.length);
}

function storePathOf(p: string, storeDir: string): string {
  const rest = p.slice(storeDir.length + 1);
  const i = rest.indexOf('/');
  return `${storeDir}/${i < 0 ? rest : rest.slice(0, i)}`;
}

/** The sub-graph reachable from `roots`, in graph order; every root must be in the graph. */
export function closureOf(graph: GraphNode[], roots: string[], source: string): GraphNode[] {
  const byPath = new Map(graph.map((n) => [n.path, n]));
  const seen = new Set<string>();
  const todo: string[] = [];
  for (const r of roots) {
    if (!byPath.has(r)) throw usageError(`${r} is not in the closure graph from ${source}`);
    if (!seen.has(r)) seen.add(r), todo.push(r);
  }
  while (todo.length) for (const ref of byPath.get(todo.pop()!)!.references) if (!seen.has(ref)) seen.add(ref), todo.push(ref);
  return graph.filter((n) => seen.has(n.path));
}
