/**
 * The live per-layer display both pull and push draw on a terminal: rows keyed by layer index, redrawn in place
 * (cursor up, clear line) at most every 100 ms unless forced, and cut to the terminal width. Callers own what a
 * row holds and how it reads; this owns the terminal.
 */
const MB = 1024 * 1024;
export const formatBytes = (n: number): string =>
  n >= 1024 * MB ? `${(n / 1024 / MB).toFixed(2)} GiB` : n >= MB ? `${(n / MB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

/** `m:ss` (or `h:mm:ss`) for an ETA. */
export const formatDuration = (secs: number): string => {
  const s = Math.max(0, Math.round(secs));
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return hms[0] ? `${hms[0]}:${String(hms[1]).padStart(2, '0')}:${String(hms[2]).padStart(2, '0')}` : `${hms[1]}:${String(hms[2]).padStart(2, '0')}`;
};

/**
 * Bytes so far against a total, the average rate since the start, and — when the total is known and bytes are
 * moving — the time left at that rate: `12.0 MiB / 40.0 MiB, 4.0 MiB/s, ETA 0:07`.
 */
export function transferLine(got: number, total: number | undefined, elapsedMs: number): string {
  const secs = Math.max(elapsedMs / 1000, 0.001);
  const rate = got / secs;
  const parts = [total !== undefined ? `${formatBytes(got)} / ${formatBytes(total)}` : formatBytes(got), `${formatBytes(rate)}/s`];
  if (total !== undefined && rate > 0 && got < total) parts.push(`ETA ${formatDuration((total - got) / rate)}`);
  return parts.join(', ');
}

/** The 12 hex digits after `sha256:`, as registries' UIs show digests. */
export const shortDigest = (digest: string): string => digest.slice(7, 19);

export class LiveRows<R> {
  readonly rows = new Map<number, R>();
  private drawn = 0;
  private last = 0;
  constructor(
    private readonly err: NodeJS.WriteStream,
    private readonly render: (index: number, row: R, now: number) => string,
    /** A line under the rows (totals), or none. */
    private readonly footer?: (now: number) => string | undefined,
    private readonly clock: () => number = Date.now,
  ) {}

  draw(force = false): void {
    const now = this.clock();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const lines = [...this.rows.entries()].sort((a, b) => a[0] - b[0]).map(([i, r]) => this.render(i, r, now));
    const foot = this.footer?.(now);
    if (foot !== undefined) lines.push(foot);
    let s = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const l of lines) s += `\r\x1b[2K${l.slice(0, (this.err.columns || 100) - 1)}\n`;
    this.err.write(s);
    this.drawn = lines.length;
  }

  /** A plain line above the live rows; the rows are drawn afresh below it next time. */
  info(line: string): void {
    this.err.write(line + '\n');
    this.drawn = 0;
  }

  update(index: number, change: (row: R) => void, force = false): void {
    const r = this.rows.get(index);
    if (r) change(r);
    this.draw(force);
  }
}
