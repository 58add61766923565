import type { Descriptor } from '../manifest/manifest.js';
import type { CopyProgress } from '../image/types.js';
import { LiveRows, formatBytes, shortDigest } from './live-rows.js';

/**
 * What a copy shows on stderr. On a terminal: one live line per layer (bytes, rate, state), redrawn at most
 * every 100 ms. Otherwise (CI, Nix builds, pipes): a few plain lines. `quiet`: nothing (errors still print).
 */
export interface ProgressDisplay extends CopyProgress {
  info(line: string): void;
  done(): void;
}

export { formatBytes };

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
  const live = new LiveRows<Row>(err, (i, r, now) => {
    const secs = Math.max((now - r.t0) / 1000, 0.001);
    const rate = r.state === 'downloading' ? `  ${formatBytes(r.got / secs)}/s` : '';
    return `layer ${String(i).padStart(2)} ${shortDigest(r.digest)}  ${formatBytes(r.got).padStart(10)} / ${formatBytes(r.total).padEnd(10)} ${r.state}${rate}`;
  });
  return {
    info: (line) => live.info(line),
    layerStart(i, d) {
      live.rows.set(i, { digest: d.digest, total: d.size, got: 0, state: 'downloading', t0: Date.now() });
      live.draw(true);
    },
    layerBytes: (i, n) => live.update(i, (r) => (r.got += n)),
    layerSpooled: (i) => live.update(i, (r) => (r.state = 'verified'), true),
    layerWritten: (i) => live.update(i, (r) => (r.state = 'written'), true),
    done: () => live.draw(true),
  };
}
