/**
 * The live per-layer display both pull and push draw on a terminal: rows keyed by layer index, redrawn in place
 * (cursor up, clear line) at most every 100 ms unless forced, and cut to the terminal width. Callers own what a
 * row holds and how it reads; this owns the terminal.
 */
const MB = 1024 * 1024;
export const formatBytes = (n: number): string =>
  n >= 1024 * MB ? `${(n / 1024 / MB).toFixed(2)} GiB` : n >= MB ? `${(n / MB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

/** The 12 hex digits after `sha256:`, as registries' UIs show digests. */
export const shortDigest = (digest: string): string => digest.slice(7, 19);

export class LiveRows<R> {
  readonly rows = new Map<number, R>();
  private drawn = 0;
  private last = 0;
  constructor(
    private readonly err: NodeJS.WriteStream,
    private readonly render: (index: number, row: R, now: number) => string,
  ) {}

  draw(force = false): void {
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const lines = [...this.rows.entries()].sort((a, b) => a[0] - b[0]).map(([i, r]) => this.render(i, r, now));
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
