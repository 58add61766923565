import { NixregError, describeSystemError, usageError } from '../errors.js';
import { openAtomic } from '../util/atomic-file.js';
import { closureGraph } from '../nix/closure.js';
import { readGraphFile, type GraphNode } from '../nix/layering/graph.js';
import { LayerCache, loadStreamConf, parseStreamConf, prepareImage, resolveLayerDigests, type StreamConf } from '../nix/stream/index.js';
import { prepareBuild, type BuildOptions } from '../nix/from-paths/index.js';
import { cycloneDxBom } from '../sbom/cyclonedx.js';
import { spdxDocument } from '../sbom/spdx.js';
import { SBOM_FORMATS, type SbomFormat, type SbomInput, type SbomLayer, type SbomPath } from '../sbom/model.js';

export { SBOM_FORMATS, SBOM_MEDIA_TYPES, type SbomFormat, type SbomInput } from '../sbom/model.js';

export interface SbomSourceOptions {
  /** a streamLayeredImage conf file ... */
  confFile?: string;
  /** ... or store paths, laid out as `nixreg build` lays them out */
  build?: BuildOptions;
  storeRoot?: string;
  /** a conf's closure graph (exportReferencesGraph JSON): NAR hashes and references without asking Nix */
  graphFile?: string;
  /** `-t NAME:TAG` for a conf without repo_tag */
  repoTag?: string;
  /** false: no layer digest cache */
  cache?: boolean;
  /** SOURCE_DATE_EPOCH (seconds): the document's time; default the conf's `created` */
  sourceDateEpoch?: string;
  toolVersion: string;
  /**
   * The image's layers in manifest order as a push made them (diffID and blob digest): used instead of a digest
   * pass over the store layers, so the bytes the push just hashed are not hashed again.
   */
  layers?: Array<{ diffID: string; digest?: string }>;
  /** the pushed manifest digest */
  imageDigest?: string;
  log?: (line: string) => void;
}

/** Everything an SBOM of the image says, from a conf or from store paths: layers with their diffIDs, the closure. */
export async function sbomInput(o: SbomSourceOptions): Promise<SbomInput> {
  let conf: StreamConf;
  let graph: GraphNode[] | undefined;
  if (o.build) {
    const prepared = await prepareBuild(o.build);
    conf = parseStreamConf(prepared.confText, 'generated conf');
    graph = prepared.graph;
  } else if (o.confFile) {
    conf = await loadStreamConf(o.confFile);
    if (o.graphFile) graph = await readGraphFile(o.graphFile);
  } else throw usageError('give a conf.json or --path STORE_PATH');
  let layers: SbomLayer[];
  let image: string;
  if (o.layers) {
    layers = pushedLayers(conf, o.layers);
    image = o.repoTag || conf.repoTag || 'image';
  } else {
    const img = await prepareImage(conf, { storeRoot: o.storeRoot, ...(o.repoTag ? { repoTag: o.repoTag } : {}) });
    const diffIDs = await resolveLayerDigests(img, o.cache === false ? undefined : new LayerCache());
    layers = img.layers.map((l, i) => ({ diffID: diffIDs[i]!, paths: l.kind === 'store' ? [...l.paths] : [] }));
    image = img.repoTag;
  }
  const all = [...new Set(layers.flatMap((l) => l.paths))];
  graph ??= await storeGraph(all, o);
  const nodes = new Map((graph ?? []).map((n) => [n.path, n]));
  const paths: SbomPath[] = all.map((p) => {
    const n = nodes.get(p);
    const license = (n as { license?: unknown } | undefined)?.license;
    return {
      path: p,
      references: n ? n.references.filter((r) => r !== p) : [],
      ...(n?.narHash ? { narHash: n.narHash } : {}),
      ...(typeof license === 'string' ? { license } : {}),
    };
  });
  return {
    image,
    ...(o.imageDigest ? { imageDigest: o.imageDigest } : {}),
    created: documentTime(o.sourceDateEpoch, conf),
    toolVersion: o.toolVersion,
    layers,
    paths,
  };
}

/** A push's layers (base..., store..., customisation) matched with the conf's store layers. */
function pushedLayers(conf: StreamConf, pushed: Array<{ diffID: string; digest?: string }>): SbomLayer[] {
  const base = pushed.length - conf.storeLayers.length - 1;
  if (base < 0 || (conf.fromImage === null && base !== 0))
    throw new NixregError(
      `the pushed image has ${pushed.length} layers, the conf ${conf.storeLayers.length} store layers and a customisation layer: they do not match`,
    );
  return pushed.map((l, i) => ({
    diffID: l.diffID,
    ...(l.digest ? { digest: l.digest } : {}),
    paths: i >= base && i < base + conf.storeLayers.length ? [...conf.storeLayers[i - base]!] : [],
  }));
}

/** The closure graph from the local Nix store; without one (a --store-root tree, no Nix), none: no hashes, no edges. */
async function storeGraph(paths: string[], o: SbomSourceOptions): Promise<GraphNode[] | undefined> {
  if (o.storeRoot || paths.length === 0) return undefined;
  try {
    return await closureGraph(paths);
  } catch (err) {
    if (!(err instanceof NixregError)) throw err;
    o.log?.(`no NAR hashes or references: ${err.message}`);
    return undefined;
  }
}

/** RFC 3339 UTC, whole seconds where the time has no fraction. */
function documentTime(sourceDateEpoch: string | undefined, conf: StreamConf): string {
  let seconds = conf.created.epochSeconds;
  if (sourceDateEpoch !== undefined && sourceDateEpoch !== '') {
    if (!/^\d+$/.test(sourceDateEpoch)) throw usageError(`SOURCE_DATE_EPOCH=${sourceDateEpoch.slice(0, 40)} is not a number of seconds`);
    seconds = Number(sourceDateEpoch);
  }
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** The document's bytes in the asked format. */
export function renderSbom(input: SbomInput, format: SbomFormat): Buffer {
  if (!SBOM_FORMATS.includes(format)) throw usageError(`--format ${format} is not one of ${SBOM_FORMATS.join(', ')}`);
  return format === 'spdx' ? spdxDocument(input) : cycloneDxBom(input);
}

/** Write bytes to FILE atomically (no partial file on any failure), or to stdout for `-`/undefined. */
export async function writeDocument(bytes: Buffer, output: string | undefined, force = false): Promise<void> {
  if (output === undefined || output === '-') {
    await new Promise<void>((res, rej) =>
      process.stdout.write(bytes, (e) => (e ? rej(new NixregError(`cannot write to stdout: ${describeSystemError(e)}`)) : res())),
    );
    return;
  }
  const out = await openAtomic(output, { force });
  try {
    await new Promise<void>((res, rej) => out.stream.write(bytes, (e) => (e ? rej(e) : res())));
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err instanceof NixregError ? err : new NixregError(`cannot write ${output}: ${describeSystemError(err)}`);
  }
}
