import pLimit from 'p-limit';
import { integrityError } from '../../errors.js';
import type { ArchiveTee, LayerTee } from './archive-tee.js';
import type { BlobPushContext, LayerPushResult } from './blob-upload.js';
import type { PushLayer } from './conf-source.js';
import type { PushProgress } from './progress.js';
import { writeKnownLayer, writeNewLayer } from './write.js';

/**
 * In which order and how many at a time layers go through the writer (write.ts). Its cheap step (cache lookup +
 * HEAD or mount) runs with a wide limit — 100+ HEADs should not queue behind uploads (https://github.com/nlewo/nix2container/pull/125) — and the
 * expensive step (generate + compress + upload) with `jobs`.
 */
const headConcurrency = (jobs: number) => Math.max(16, jobs * 4);

/** Every layer, in parallel; results in layer order. */
export async function pushLayers(layers: readonly PushLayer[], ctx: BlobPushContext, progress: PushProgress, jobs: number): Promise<LayerPushResult[]> {
  progress.begin(layers.length);
  const heads = pLimit(headConcurrency(jobs));
  const uploads = pLimit(jobs);
  const out: LayerPushResult[] = new Array(layers.length);
  // On the first failure nothing new starts, running work is awaited (no request is left dangling), and that
  // first error is thrown.
  let failure: { err: unknown } | undefined;
  const unlessFailed =
    <T>(f: () => Promise<T>) =>
    async (): Promise<T | undefined> =>
      failure ? undefined : f();
  await Promise.all(
    layers.map(async (layer, i) => {
      try {
        let r = await heads(
          unlessFailed(() => {
            progress.layerStart(layer.index, label(layer));
            return writeKnownLayer(ctx, layer);
          }),
        );
        // the failure is recorded inside the limiter's slot, before the next queued upload is let in
        const guarded = () =>
          upload(layer, ctx, progress).catch((err: unknown) => {
            failure ??= { err };
            throw err;
          });
        if (r === undefined && !failure) r = await uploads(unlessFailed(guarded));
        if (r !== undefined) {
          out[i] = r;
          progress.layerDone(layer.index, r.status, r.digest, r.blobSize, r.from);
        }
      } catch (err) {
        failure ??= { err };
      }
    }),
  );
  if (failure) throw failure.err;
  return out;
}

/**
 * With --output: the archive is written in layer order, so layers are generated one after the other (HEADs still
 * in parallel); each is generated once, into the archive and — when the registry lacks it — into the upload.
 */
export async function pushLayersWithArchive(
  layers: readonly PushLayer[],
  ctx: BlobPushContext,
  progress: PushProgress,
  jobs: number,
  archive: ArchiveTee,
): Promise<LayerPushResult[]> {
  progress.begin(layers.length);
  const heads = pLimit(headConcurrency(jobs));
  const known = await Promise.all(
    layers.map((layer) =>
      heads(() => {
        progress.layerStart(layer.index, label(layer));
        return writeKnownLayer(ctx, layer);
      }),
    ),
  );
  const results: LayerPushResult[] = [];
  for (const [i, layer] of layers.entries()) {
    let r = known[i];
    if (r) {
      const diffID = await archive.copyLayer(layer);
      if (diffID !== r.diffID) throw integrityError(`layer ${r.diffID} (from the push cache) came out as ${diffID}: its files changed`);
    } else r = await upload(layer, ctx, progress, () => archive.beginLayer(layer));
    progress.layerDone(layer.index, r.status, r.digest, r.blobSize, r.from);
    results.push(r);
  }
  return results;
}

/** The expensive steps of the writer, reporting progress. */
function upload(layer: PushLayer, ctx: BlobPushContext, progress: PushProgress, tee?: () => Promise<LayerTee>): Promise<LayerPushResult> {
  return writeNewLayer(ctx, layer, {
    uploading: () => progress.layerUploading(layer.index),
    onBytes: (n) => progress.layerBytes(layer.index, n),
    ...(tee ? { tee } : {}),
  });
}

function label(layer: PushLayer): string {
  if (layer.paths.length !== 1) return `${layer.paths.length} paths`;
  const base = layer.paths[0]!.split('/').pop() ?? layer.paths[0]!;
  return /^[0-9a-z]{32}-/.test(base) ? base.slice(33) : base;
}
