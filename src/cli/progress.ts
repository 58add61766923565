import type { Descriptor } from '../manifest/manifest.js';
import type { CopyProgress } from '../image/types.js';

/**
 * What a copy shows on stderr. On a terminal: one live line per layer (bytes, rate, state), redrawn at most
 * every 100 ms. Otherwise (CI, Nix builds, pipes): a few plain lines. `quiet`: nothing (errors still print).
 */
export interface ProgressDisplay extends CopyProgress {
  info(line: string): void;
  done(): void;
}

const MB = 1024 * 1024;
export const formatBytes = (n: number): string =>
  n >= 1024 * MB ? `${(n / 1024 / MB).toFixed(2)} GiB` : n >= MB ? `${(n / MB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

const short = (digest: string) => digest.slice(7, 19);

export function createProgress(opts: { quiet?: boolean; tty?: boolean; stream?: NodeJS.WriteStream }): ProgressDisplay {
  const err = opts.stream ?? process.stderr;
  if (opts.quiet) return { info() {}, done() {} };
  if (!(opts.tty ?? err.isTTY)) return plainProgress(err);
  return ttyProgress(err);
}

function plainProgress(err: NodeJS.WritableStream): ProgressDisplay {
  let layers = 0;
  let bytes = 0;
  const t0 = Date.now();
  return {
    info: (line) => err.write(line + '\n'),
    layerStart(_i, d: Descriptor) {
      layers++;
      bytes += d.size;
    },
    done() {
      if (layers) err.write(`fetched ${layers} layer(s), ${formatBytes(bytes)} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
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

function ttyProgress(err: NodeJS.WriteStream): ProgressDisplay {
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
        const rate = r.state === 'downloading' ? `  ${formatBytes(r.got / secs)}/s` : '';
        return `layer ${String(i).padStart(2)} ${short(r.digest)}  ${formatBytes(r.got).padStart(10)} / ${formatBytes(r.total).padEnd(10)} ${r.state}${rate}`;
      });
    let s = drawn ? `\x1b[${drawn}A` : '';
    for (const l of lines) s += `\r\x1b[2K${l.slice(0, (err.columns || 100) - 1)}\n`;
    err.write(s);
    drawn = lines.length;
  };
  return {
    info(line) {
      err.write(line + '\n');
      drawn = 0;
    },
    layerStart(i, d) {
      rows.set(i, { digest: d.digest, total: d.size, got: 0, state: 'downloading', t0: Date.now() });
      draw(true);
    },
    layerBytes(i, n) {
      const r = rows.get(i);
      if (r) r.got += n;
      draw();
    },
    layerSpooled(i) {
      const r = rows.get(i);
      if (r) r.state = 'verified';
      draw(true);
    },
    layerWritten(i) {
      const r = rows.get(i);
      if (r) r.state = 'written';
      draw(true);
    },
    done: () => draw(true),
  };
}
