import type { BlobStatus } from './blob-upload.js';

/**
 * What a push shows on stderr. On a terminal: one live line per layer (checking / uploading with bytes and
 * rate / exists / mounted / pushed), redrawn at most every 100 ms. Otherwise (CI, Nix builds, pipes): one plain
 * line per finished layer and a summary. `quiet`: nothing; errors still print.
 */
export interface PushProgress {
  /** How many layers (blobs) this push has; before the first layer event. */
  begin(total: number): void;
  layerStart(index: number, label: string): void;
  layerUploading(index: number): void;
  layerBytes(index: number, n: number): void;
  layerDone(index: number, status: BlobStatus, digest: string, blobSize: number, from?: string): void;
  info(line: string): void;
  done(): void;
}

const MB = 1024 * 1024;
const fmt = (n: number): string =>
  n >= 1024 * MB ? `${(n / 1024 / MB).toFixed(2)} GiB` : n >= MB ? `${(n / MB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
const short = (d: string) => d.slice(7, 19);

export const silentProgress: PushProgress = {
  begin() {},
  layerStart() {},
  layerUploading() {},
  layerBytes() {},
  layerDone() {},
  info() {},
  done() {},
};

export function createPushProgress(opts: { quiet?: boolean; tty?: boolean; stream?: NodeJS.WriteStream }): PushProgress {
  const err = opts.stream ?? process.stderr;
  if (opts.quiet) return silentProgress;
  return (opts.tty ?? err.isTTY) ? ttyProgress(err) : plainProgress(err);
}

const describe = (status: BlobStatus, blobSize: number, from?: string) =>
  status === 'exists' ? 'exists' : status === 'mounted' ? `mounted from ${from}` : `pushed ${fmt(blobSize)}`;

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
      err.write(`layer ${String(i + 1).padStart(width)}/${total} ${short(digest)} ${describe(status, blobSize, from)}\n`);
    },
    info: (line) => err.write(line + '\n'),
    done() {
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      err.write(`${total} layer(s): ${counts.uploaded} pushed (${fmt(bytes)}), ${counts.exists} already present, ${counts.mounted} mounted, in ${secs} s\n`);
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
  const rows = new Map<number, Row>();
  let drawn = 0;
  let last = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const lines = [...rows.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([i, r]) => {
        const secs = Math.max((now - r.t0) / 1000, 0.001);
        const detail = r.state === 'uploading' ? ` ${fmt(r.got)} ${fmt(r.got / secs)}/s` : '';
        return `layer ${String(i + 1).padStart(String(total).length)}/${total} ${r.label} ${r.state}${detail}`;
      });
    let s = drawn ? `\x1b[${drawn}A` : '';
    for (const l of lines) s += `\r\x1b[2K${l.slice(0, (err.columns || 100) - 1)}\n`;
    err.write(s);
    drawn = lines.length;
  };
  return {
    begin(n) {
      total = n;
    },
    layerStart(i, label) {
      rows.set(i, { label, state: 'checking', got: 0, t0: Date.now() });
      draw();
    },
    layerUploading(i) {
      const r = rows.get(i);
      if (r) Object.assign(r, { state: 'uploading', t0: Date.now() });
      draw(true);
    },
    layerBytes(i, n) {
      const r = rows.get(i);
      if (r) r.got += n;
      draw();
    },
    layerDone(i, status, digest, blobSize, from) {
      const r = rows.get(i) ?? { label: '', state: '', got: 0, t0: Date.now() };
      rows.set(i, { ...r, label: short(digest), state: describe(status, blobSize, from) });
      draw(true);
    },
    info(line) {
      err.write(line + '\n');
      drawn = 0;
    },
    done: () => draw(true),
  };
}
