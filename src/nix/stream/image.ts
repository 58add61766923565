import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { NixregError, usageError } from '../../errors.js';
import { encodePythonPaxHeader, endOfArchive, padTo512, type PyTarInfo } from '../../tar/python-pax.js';
import { describeCustomisationLayer } from './customisation.js';
import type { LayerCache } from '../layer-cache.js';
import type { StreamConf } from './conf.js';
import { loadBaseImage, type BaseImage } from './base-image.js';
import { pyListRepr } from './py-json.js';
import { buildImageConfig, buildManifest, layerMemberName } from './image-json.js';
import {
  planStoreLayer,
  storeLayerCacheKey,
  storeLayerChunks,
  storeLayerDigest,
  type LayerPassStats,
  type StoreLayerPlan,
} from './store-layer.js';
import type { ByteSink } from './sink.js';

/**
 * The stream_layered_image.py pipeline: base layers, store layers, customisation layer, config, manifest.json,
 * in one outer Python-PAX tar. `prepareImage` does every check (conf, store paths, customisation layer,
 * from_image) and the metadata walk before any byte is written; `writeImage` then writes each layer once.
 */

export interface CustomisationOwner {
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mode: number;
}

/**
 * The script copies the customisation layer's outer header from `gettarinfo(<layer.tar>)`, i.e. from whoever
 * owns the store file as seen by the machine running it. The reference outputs (and a normal multi-user store)
 * show root:root 0444; we fix that instead of depending on this machine's passwd.
 */
export const DEFAULT_CUSTOMISATION_OWNER: CustomisationOwner = { uid: 0, gid: 0, uname: 'root', gname: 'root', mode: 0o444 };

export interface StreamImageOptions {
  storeRoot?: string;
  /** `-t NAME:TAG`: overrides conf.repo_tag in manifest.json. */
  repoTag?: string;
  /** Digest cache; undefined = no cache. */
  cache?: LayerCache;
  /** Progress lines exactly as the script prints them on stderr (without newline). */
  log?: (line: string) => void;
  customisationOwner?: CustomisationOwner;
}

export type { LayerKind, ImageLayer, PreparedImage } from './prepared-image.js';
import type { ImageLayer, LayerKind, PreparedImage } from './prepared-image.js';

export async function prepareImage(conf: StreamConf, opts: StreamImageOptions = {}): Promise<PreparedImage> {
  const repoTag = opts.repoTag || conf.repoTag;
  if (!repoTag) throw usageError('conf has no repo_tag; pass -t NAME:TAG');
  const layers: ImageLayer[] = [];
  let base: BaseImage | undefined;
  if (conf.fromImage !== null) {
    base = await loadBaseImage(conf.fromImage, opts.storeRoot);
    const b = base;
    b.layers.forEach((l, index) => {
      layers.push({
        kind: 'base',
        paths: [l.member.name],
        size: l.member.size,
        diffID: `sha256:${l.diffHex}`,
        open: () => Readable.from(b.archive.openMemberData(l.member), { objectMode: false }),
        source: { base: b, index },
      });
    });
  }
  const owner = { mtime: conf.mtime, uid: conf.uid, gid: conf.gid, uname: conf.uname, gname: conf.gname, storeRoot: opts.storeRoot };
  for (const paths of conf.storeLayers) {
    const plan = await planStoreLayer(paths, owner);
    layers.push({ kind: 'store', paths: [...paths], size: plan.size, open: () => Readable.from(storeLayerChunks(plan), { objectMode: false }), source: { plan } });
  }
  const cust = conf.customisationLayer;
  const { file: layerTar, diffID: custDiffID, size: custSize } = await describeCustomisationLayer(cust, opts.storeRoot);
  layers.push({
    kind: 'customisation',
    paths: [cust],
    size: custSize,
    diffID: custDiffID,
    open: () => Readable.from(fileChunks(layerTar, custSize), { objectMode: false }),
    source: { file: layerTar },
  });
  return { conf, base, layers, repoTag };
}

/** Fill in the diffID of every store layer (cache or one hashing pass each): for callers that need all digests first. */
export async function resolveLayerDigests(img: PreparedImage, cache?: LayerCache, stats?: LayerPassStats): Promise<string[]> {
  for (const l of img.layers) {
    if (!l.diffID && 'plan' in l.source) l.diffID = (await storeLayerDigest(l.source.plan, cache, stats)).diffID;
  }
  return img.layers.map((l) => l.diffID!);
}

async function* fileChunks(path: string, size: number): AsyncGenerator<Buffer> {
  let got = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    got += (chunk as Buffer).length;
    if (got > size) break;
    yield chunk as Buffer;
  }
  if (got !== size) throw new NixregError(`${path} changed size while being copied (expected ${size} bytes, read ${got})`);
}

export interface StreamResult {
  layers: Array<{ kind: LayerKind; diffID: string; size: number; member: string }>;
  config: { name: string; digest: string; size: number };
  manifest: Buffer;
  /** Total bytes of the outer tar. */
  size: number;
  stats: LayerPassStats & { hashedWhileWriting: number };
}

/**
 * Write the whole image. Per store layer:
 * - digest cached → header + one generation straight to the output;
 * - seekable output → header with a placeholder name, one generation hashed on the way, header patched
 *   (the name is the only thing that depends on the digest; the size is known from the plan);
 * - otherwise → one hashing pass (cached for next time), then one generation to the output, like the script.
 */
export async function writeImage(img: PreparedImage, sink: ByteSink, opts: StreamImageOptions = {}): Promise<StreamResult> {
  try {
    return await writeOuterTar(img, sink, opts);
  } finally {
    await img.base?.archive.close();
  }
}

async function writeOuterTar(img: PreparedImage, sink: ByteSink, opts: StreamImageOptions): Promise<StreamResult> {
  const { conf } = img;
  const log = opts.log ?? (() => {});
  const stats = { hashPasses: 0, writePasses: 0, cacheHits: 0, hashedWhileWriting: 0 };
  const owner = opts.customisationOwner ?? DEFAULT_CUSTOMISATION_OWNER;
  let offset = 0;
  const put = async (b: Buffer) => {
    if (b.length === 0) return;
    await sink.write(b);
    offset += b.length;
  };
  const regular = (name: string, size: number): PyTarInfo => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size, mtime: conf.mtime });
  const copy = async (what: string, chunks: AsyncIterable<Buffer>, size: number, hash?: ReturnType<typeof createHash>) => {
    let n = 0;
    try {
      for await (const c of chunks) {
        hash?.update(c);
        n += c.length;
        await put(c);
      }
    } catch (err) {
      if (err instanceof NixregError) throw err;
      throw new NixregError(`${what}: ${(err as Error).message}`);
    }
    if (n !== size) throw new NixregError(`${what} came out ${n} bytes, expected ${size}`);
    await put(Buffer.alloc(padTo512(size)));
  };
  const results: StreamResult['layers'] = [];
  if (!img.base) log("No 'fromImage' provided");
  let num = 0;
  for (const l of img.layers) {
    num++;
    if ('base' in l.source) {
      const m = l.source.base.layers[l.source.index]!.member;
      await put(encodePythonPaxHeader(m.info));
      await copy(`from_image layer ${m.name}`, l.source.base.archive.memberData(m), m.size);
      log(`Adding base layer ${num} from ${m.name}`);
    } else if ('plan' in l.source) {
      log(`Creating layer ${num} from paths: ${pyListRepr(l.paths)}`);
      const plan = l.source.plan;
      let diffID = l.diffID;
      if (!diffID && opts.cache) {
        const hit = await opts.cache.get(storeLayerCacheKey(plan));
        if (hit && hit.size === plan.size) {
          diffID = hit.diffID;
          stats.cacheHits++;
        }
      }
      if (!diffID && !sink.patch) diffID = (await storeLayerDigest(plan, opts.cache, stats)).diffID;
      stats.writePasses++;
      if (diffID) {
        await put(encodePythonPaxHeader(regular(`${diffID.slice(7)}/layer.tar`, plan.size)));
        await copy(`layer ${num}`, storeLayerChunks(plan), plan.size);
      } else {
        const headerAt = offset;
        const placeholder = encodePythonPaxHeader(regular(`${'0'.repeat(64)}/layer.tar`, plan.size));
        await put(placeholder);
        const h = createHash('sha256');
        await copy(`layer ${num}`, storeLayerChunks(plan), plan.size, h);
        stats.hashedWhileWriting++;
        diffID = 'sha256:' + h.digest('hex');
        const real = encodePythonPaxHeader(regular(`${diffID.slice(7)}/layer.tar`, plan.size));
        if (real.length !== placeholder.length) throw new NixregError('internal error: layer header length changed');
        await sink.patch!(headerAt, real);
        await opts.cache?.put(storeLayerCacheKey(plan), { diffID, size: plan.size });
      }
      l.diffID = diffID;
    } else {
      log(`Creating layer ${num} with customisation...`);
      const info: PyTarInfo = { ...regular(`${l.diffID!.slice(7)}/layer.tar`, l.size), ...owner };
      await put(encodePythonPaxHeader(info));
      await copy(`customisation layer ${l.paths[0]}`, l.open(), l.size);
    }
    results.push({ kind: l.kind, diffID: l.diffID!, size: l.size, member: layerMemberName(l, l.diffID!) });
  }
  log('Adding manifests...');
  const diffIDs = img.layers.map((l) => l.diffID!);
  const config = buildImageConfig(img, diffIDs);
  const configHex = createHash('sha256').update(config).digest('hex');
  const configName = `${configHex}.json`;
  await put(encodePythonPaxHeader(regular(configName, config.length)));
  await put(config);
  await put(Buffer.alloc(padTo512(config.length)));
  const manifest = buildManifest(img, diffIDs, configName);
  await put(encodePythonPaxHeader(regular('manifest.json', manifest.length)));
  await put(manifest);
  await put(Buffer.alloc(padTo512(manifest.length)));
  await put(endOfArchive(offset));
  await sink.finish();
  log('Done.');
  return {
    layers: results,
    config: { name: configName, digest: `sha256:${configHex}`, size: config.length },
    manifest,
    size: offset,
    stats,
  };
}

