import type { BlobStatus } from '../push/blob-upload.js';
import { silentProgress, type PushProgress } from '../push/progress.js';
import { LiveRows, formatBytes, shortDigest } from './live-rows.js';

/**
 * What a push shows on stderr. On a terminal: one live line per layer (checking / uploading with bytes and
 * rate / exists / mounted / pushed), redrawn at most every 100 ms. Otherwise (CI, Nix builds, pipes): one plain
 * line per finished layer and a summary. `quiet`: nothing; errors still print.
 */
export function createPushProgress(opts: { quiet?: boolean; tty?: boolean; stream?: NodeJS.WriteStream }): PushProgress {
  const err = opts.stream ?? process.stderr;
  if (opts.quiet) return silentProgress;
  return (opts.tty ?? err.isTTY) ? ttyProgress(err) : plainProgress(err);
}

const describe = (status: BlobStatus, blobSize: number, from?: string) =>
  status === 'exists' ? 'exists' : status === 'mounted' ? `mounted from ${from}` : `pushed ${formatBytes(blobSize)}`;

function plainProgress(err: NodeJS.WritableStream): PushProgress {
  const counts: Record<BlobStatus, number> = { exists: 0, mounted: 0, uploaded: 0 };
  let bytes = 0;
  let total = 0;
  let width = 1;
  const t0 = Date.now();
  return {
    ...silentProgress,
    begin(n) {
      total = n;
      width = String(n).length;
    },
    layerDone(i, status, digest, blobSize, from) {
      counts[status]++;
      if (status === 'uploaded') bytes += blobSize;
      err.write(`layer ${String(i + 1).padStart(width)}/${total} ${shortDigest(digest)} ${describe(status, blobSize, from)}\n`);
    },
    info: (line) => err.write(line + '\n'),
    done() {
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      err.write(`${total} layer(s): ${counts.uploaded} pushed (${formatBytes(bytes)}), ${counts.exists} already present, ${counts.mounted} mounted, in ${secs} s\n`);
    },
  };
}

interface Row {
  label: string;
  state: string;
  got: number;
  t0: number;
}

function ttyProgress(err: NodeJS.WriteStream): PushProgress {
  let total = 0;
  const live = new LiveRows<Row>(err, (i, r, now) => {
    const secs = Math.max((now - r.t0) / 1000, 0.001);
    const detail = r.state === 'uploading' ? ` ${formatBytes(r.got)} ${formatBytes(r.got / secs)}/s` : '';
    return `layer ${String(i + 1).padStart(String(total).length)}/${total} ${r.label} ${r.state}${detail}`;
  });
  return {
    begin(n) {
      total = n;
    },
    layerStart(i, label) {
      live.rows.set(i, { label, state: 'checking', got: 0, t0: Date.now() });
      live.draw();
    },
    layerUploading: (i) => live.update(i, (r) => Object.assign(r, { state: 'uploading', t0: Date.now() }), true),
    layerBytes: (i, n) => live.update(i, (r) => (r.got += n)),
    layerDone(i, status, digest, blobSize, from) {
      const r = live.rows.get(i) ?? { label: '', state: '', got: 0, t0: Date.now() };
      live.rows.set(i, { ...r, label: shortDigest(digest), state: describe(status, blobSize, from) });
      live.draw(true);
    },
    info: (line) => live.info(line),
    done: () => live.draw(true),
  };
}
