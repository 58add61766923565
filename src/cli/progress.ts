import type { Descriptor } from '../manifest/manifest.js';
import type { CopyProgress } from '../image/types.js';
import { LiveRows, formatBytes, shortDigest, transferLine } from './live-rows.js';

/**
 * What a copy shows on stderr. On a terminal: one live line per layer (bytes, rate, state) and a totals line
 * under them (layers, bytes of the total, rate, ETA), redrawn at most every 100 ms. Otherwise (CI, Nix builds,
 * pipes): a few plain lines. Both end with one summary line. `quiet`: nothing (errors still print).
 */
export interface ProgressDisplay extends CopyProgress {
  info(line: string): void;
  done(): void;
}

export { formatBytes };

export function createProgress(opts: { quiet?: boolean; tty?: boolean; stream?: NodeJS.WriteStream; clock?: () => number }): ProgressDisplay {
  const err = opts.stream ?? process.stderr;
  if (opts.quiet) return { info() {}, done() {} };
  const clock = opts.clock ?? Date.now;
  if (!(opts.tty ?? err.isTTY)) return plainProgress(err, clock);
  return ttyProgress(err, clock);
}

/**
 * The whole copy: layers to fetch (repeats of an earlier layer excluded) and bytes, from the manifest. Several
 * images in one run (prefetch --platform all) add up; the same layers planned again (a retry on another path)
 * start the count afresh.
 */
class PullTally {
  sizes = new Map<number, number>();
  planned = false;
  got = 0;
  finished = new Set<number>();
  private plan = '';
  private before = { layers: 0, bytes: 0, got: 0, finished: 0 };
  t0: number;
  constructor(private readonly clock: () => number) {
    this.t0 = clock();
  }
  begin(layers: readonly Descriptor[]): void {
    const plan = layers.map((d) => d.digest).join(',');
    if (this.planned && plan !== this.plan) this.before = { layers: this.layers, bytes: this.total, got: this.got, finished: this.finishedCount };
    this.plan = plan;
    this.sizes = new Map(layers.map((d, i) => [i, d.size]));
    this.planned = true;
    this.got = this.before.got;
    this.finished.clear();
  }
  get layers(): number {
    return this.before.layers + this.sizes.size;
  }
  get bytesBefore(): number {
    return this.before.bytes;
  }
  get finishedCount(): number {
    return this.before.finished + this.finished.size;
  }
  skipped(i: number): void {
    this.sizes.delete(i);
  }
  started(i: number, d: Descriptor): void {
    if (!this.planned) this.sizes.set(i, d.size);
  }
  get total(): number {
    let s = this.before.bytes;
    for (const n of this.sizes.values()) s += n;
    return s;
  }
  totals(now: number): string {
    return `total: ${this.finishedCount}/${this.layers} layer(s), ${transferLine(this.got, this.total, now - this.t0)}`;
  }
  summary(): string {
    const ms = this.clock() - this.t0;
    return `fetched ${this.layers} layer(s), ${formatBytes(this.total)} in ${(ms / 1000).toFixed(1)} s, ${formatBytes(this.got / Math.max(ms / 1000, 0.001))}/s`;
  }
}

function plainProgress(err: NodeJS.WritableStream, clock: () => number): ProgressDisplay {
  const t = new PullTally(clock);
  let announced = false;
  return {
    info: (line) => err.write(line + '\n'),
    begin(layers) {
      t.begin(layers);
      announced = false;
    },
    layerSkipped: (i) => t.skipped(i),
    layerStart(i, d) {
      t.started(i, d);
      // after begin and the repeats: the plan of this image
      if (t.planned && !announced) err.write(`fetching ${t.sizes.size} layer(s), ${formatBytes(t.total - t.bytesBefore)}\n`);
      announced = true;
    },
    layerBytes: (_i, n) => void (t.got += n),
    done() {
      if (t.layers) err.write(t.summary() + '\n');
    },
  };
}

interface Row {
  digest: string;
  total: number;
  got: number;
  state: string;
  t0: number;
}

function ttyProgress(err: NodeJS.WriteStream, clock: () => number): ProgressDisplay {
  const t = new PullTally(clock);
  const live = new LiveRows<Row>(
    err,
    (i, r, now) => {
      const secs = Math.max((now - r.t0) / 1000, 0.001);
      const rate = r.state === 'downloading' ? `  ${formatBytes(r.got / secs)}/s` : '';
      return `layer ${String(i).padStart(2)} ${shortDigest(r.digest)}  ${formatBytes(r.got).padStart(10)} / ${formatBytes(r.total).padEnd(10)} ${r.state}${rate}`;
    },
    (now) => (t.layers ? t.totals(now) : undefined),
    clock,
  );
  return {
    info: (line) => live.info(line),
    begin: (layers) => t.begin(layers),
    layerSkipped: (i) => t.skipped(i),
    layerStart(i, d) {
      t.started(i, d);
      live.rows.set(i, { digest: d.digest, total: d.size, got: 0, state: 'downloading', t0: clock() });
      live.draw(true);
    },
    layerBytes(i, n) {
      t.got += n;
      live.update(i, (r) => (r.got += n));
    },
    layerSpooled: (i) => live.update(i, (r) => (r.state = 'verified'), true),
    layerWritten(i) {
      t.finished.add(i);
      live.update(i, (r) => (r.state = 'written'), true);
    },
    done() {
      live.draw(true);
      if (t.layers) live.info(t.summary());
    },
  };
}
