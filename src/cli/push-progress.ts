import type { BlobStatus } from '../sink/registry/blob-upload.js';
import { silentProgress, type BlobInfo, type PushProgress } from '../sink/registry/progress.js';
import { LiveRows, formatBytes, shortDigest, transferLine } from './live-rows.js';

/**
 * What a push shows on stderr. On a terminal: one live line per layer (checking / uploading with bytes and
 * rate / exists / mounted / pushed, with the blob's compressed digest once known), a totals line under them
 * (bytes, rate, ETA when the sizes are known), redrawn at most every 100 ms. Otherwise (CI, Nix builds, pipes):
 * one plain line per finished layer. Both end with one summary line. The image config is shown as `config`,
 * never counted as a layer. `quiet`: nothing; errors still print.
 */
export function createPushProgress(opts: { quiet?: boolean; tty?: boolean; stream?: NodeJS.WriteStream; clock?: () => number }): PushProgress {
  const err = opts.stream ?? process.stderr;
  if (opts.quiet) return silentProgress;
  const clock = opts.clock ?? Date.now;
  return (opts.tty ?? err.isTTY) ? ttyProgress(err, clock) : plainProgress(err, clock);
}

const describe = (status: BlobStatus, blobSize: number, from?: string) =>
  status === 'exists' ? 'exists' : status === 'mounted' ? `mounted from ${from}` : `pushed ${formatBytes(blobSize)}`;

/** Counts and numbering shared by both displays: blobs flagged as configs are kept apart from layers. */
class PushTally {
  total = 0;
  readonly configs = new Set<number>();
  readonly sizes = new Map<number, number>();
  readonly settled = new Map<number, BlobStatus>();
  readonly counts: Record<BlobStatus, number> = { exists: 0, mounted: 0, uploaded: 0 };
  pushedBytes = 0;
  sentBytes = 0;
  readonly t0: number;
  constructor(private readonly clock: () => number) {
    this.t0 = clock();
  }
  get layers(): number {
    return Math.max(0, this.total - this.configs.size);
  }
  /** 1-based layer number of blob `i`, configs before it not counted. */
  number(i: number): number {
    let before = 0;
    for (const c of this.configs) if (c < i) before++;
    return i + 1 - before;
  }
  label(i: number): string {
    return this.configs.has(i) ? 'config' : `layer ${String(this.number(i)).padStart(String(this.layers).length)}/${this.layers}`;
  }
  start(i: number, info?: BlobInfo): void {
    if (info?.config) this.configs.add(i);
    if (info?.size !== undefined) this.sizes.set(i, info.size);
  }
  done(i: number, status: BlobStatus, blobSize: number): void {
    this.settled.set(i, status);
    this.sizes.set(i, blobSize);
    if (this.configs.has(i)) return;
    this.counts[status]++;
    if (status === 'uploaded') this.pushedBytes += blobSize;
  }
  /** Bytes still to send, when every blob's size is known: blobs found present or mounted need none. */
  toSend(): number | undefined {
    let sum = 0;
    for (let i = 0; i < this.total; i++) {
      const s = this.settled.get(i);
      if (s === 'exists' || s === 'mounted') continue;
      const size = this.sizes.get(i);
      if (size === undefined) return undefined;
      sum += size;
    }
    return sum;
  }
  summary(): string {
    const ms = this.clock() - this.t0;
    const secs = Math.max(ms / 1000, 0.001);
    const c = this.counts;
    return `${this.layers} layer(s): ${c.uploaded} pushed (${formatBytes(this.pushedBytes)}), ${c.exists} already present, ${c.mounted} mounted, in ${(ms / 1000).toFixed(1)} s, ${formatBytes(this.sentBytes / secs)}/s`;
  }
}

function plainProgress(err: NodeJS.WritableStream, clock: () => number): PushProgress {
  const t = new PushTally(clock);
  return {
    ...silentProgress,
    begin(n) {
      t.total = n;
    },
    layerStart: (i, _label, info) => t.start(i, info),
    layerBytes: (_i, n) => void (t.sentBytes += n),
    layerDone(i, status, digest, blobSize, from) {
      t.done(i, status, blobSize);
      err.write(`${t.label(i)} ${shortDigest(digest)} ${describe(status, blobSize, from)}\n`);
    },
    info: (line) => err.write(line + '\n'),
    done: () => err.write(t.summary() + '\n'),
  };
}

interface Row {
  label: string;
  state: string;
  got: number;
  t0: number;
}

function ttyProgress(err: NodeJS.WriteStream, clock: () => number): PushProgress {
  const t = new PushTally(clock);
  const live = new LiveRows<Row>(
    err,
    (i, r, now) => {
      const secs = Math.max((now - r.t0) / 1000, 0.001);
      const detail = r.state === 'uploading' ? ` ${formatBytes(r.got)} ${formatBytes(r.got / secs)}/s` : '';
      return `${t.label(i)} ${r.label} ${r.state}${detail}`;
    },
    (now) =>
      `total: ${t.settled.size - [...t.configs].filter((c) => t.settled.has(c)).length}/${t.layers} layer(s) done, ${transferLine(t.sentBytes, t.toSend(), now - t.t0)}`,
    clock,
  );
  return {
    begin(n) {
      t.total = n;
    },
    layerStart(i, label, info) {
      t.start(i, info);
      live.rows.set(i, { label, state: 'checking', got: 0, t0: clock() });
      live.draw();
    },
    layerUploading: (i) => live.update(i, (r) => Object.assign(r, { state: 'uploading', t0: clock() }), true),
    layerBytes(i, n) {
      t.sentBytes += n;
      live.update(i, (r) => (r.got += n));
    },
    layerDone(i, status, digest, blobSize, from) {
      t.done(i, status, blobSize);
      const r = live.rows.get(i) ?? { label: '', state: '', got: 0, t0: clock() };
      live.rows.set(i, { ...r, label: shortDigest(digest), state: describe(status, blobSize, from) });
      live.draw(true);
    },
    info: (line) => live.info(line),
    done() {
      live.draw(true);
      live.info(t.summary());
    },
  };
}
