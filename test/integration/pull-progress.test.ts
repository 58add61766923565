import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/cli/progress.js';

// What `nixreg pull` shows on stderr: a live per-layer table on a terminal, one summary line elsewhere, nothing with --quiet.
function fakeStream(isTTY: boolean, columns = 120) {
  let out = '';
  const stream = { isTTY, columns, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}
const D = (c: string) => `sha256:${c.repeat(64)}`;
const layer = (c: string, size: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D(c), size });
/** The rows of the last frame: after the last cursor-up over `n` rows, control sequences removed. */
function lastFrame(screen: string, n: number): string[] {
  return screen
    .slice(screen.lastIndexOf(`\x1b[${n}A`))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, ''));
}

describe('pull progress display', () => {
  it('terminal: one redrawn row per layer with bytes, total, state and rate', () => {
    const f = fakeStream(true);
    const p = createProgress({ stream: f.stream });
    p.layerStart!(0, layer('a', 4 * 1024 * 1024));
    p.layerStart!(1, layer('b', 2048));
    p.layerStart!(2, layer('c', 10));
    p.layerBytes!(0, 3 * 1024 * 1024);
    p.layerBytes!(1, 2048);
    p.layerSpooled!(1, 4096);
    p.layerBytes!(2, 10);
    p.layerWritten!(2);
    p.done();
    const rows = lastFrame(f.text(), 4);
    expect(rows).toHaveLength(5); // three layers, the totals line, the summary
    expect(rows[0]).toMatch(/^layer {2}0 aaaaaaaaaaaa {5}3\.0 MiB \/ 4\.0 MiB {4}downloading {2}[\d.]+ (KiB|MiB|GiB)\/s$/);
    expect(rows[1]).toBe('layer  1 bbbbbbbbbbbb     2.0 KiB / 2.0 KiB    verified');
    expect(rows[2]).toBe('layer  2 cccccccccccc        10 B / 10 B       written');
    expect(rows[3]).toMatch(/^total: 1\/3 layer\(s\), 3\.0 MiB \/ 4\.0 MiB, [\d.]+ (KiB|MiB|GiB)\/s(, ETA \d+:\d\d)?$/);
    expect(rows[4]).toMatch(/^fetched 3 layer\(s\), 4\.0 MiB in [\d.]+ s, [\d.]+ (KiB|MiB|GiB)\/s$/);
  });

  it('terminal: an info line goes above the table, which is drawn afresh below it; rows are cut to the width', () => {
    const f = fakeStream(true, 30);
    const p = createProgress({ stream: f.stream });
    p.layerStart!(0, layer('a', 100));
    p.info('Writing manifest to image destination');
    p.layerStart!(1, layer('b', 100));
    p.done();
    const screen = f.text();
    const afterInfo = screen.slice(screen.indexOf('Writing manifest to image destination\n') + 'Writing manifest to image destination\n'.length);
    // the first frame after the info line starts with no cursor-up (nothing of the table is below the info line)
    expect(afterInfo.startsWith('\r\x1b[2K')).toBe(true);
    const rows = lastFrame(screen, 3).slice(0, 3);
    expect(rows).toEqual(['layer  0 aaaaaaaaaaaa        ', 'layer  1 bbbbbbbbbbbb        ', 'total: 0/2 layer(s), 0 B / 20']); // 'layer  0 aaaaaaaaaaaa         0 B / 100 B …' cut at 29
    for (const r of rows) expect(r.length).toBe(29);
  });

  it('not a terminal: one summary line (no per-byte updates), and info lines as they come', () => {
    const f = fakeStream(false);
    const p = createProgress({ stream: f.stream });
    p.info('Getting image source signatures');
    p.layerStart!(0, layer('a', 1024 * 1024));
    p.layerBytes?.(0, 1024 * 1024);
    p.layerStart!(1, layer('b', 1024));
    p.layerWritten?.(1);
    p.done();
    const lines = f.text().trimEnd().split('\n');
    expect(lines[0]).toBe('Getting image source signatures');
    expect(lines[1]).toMatch(/^fetched 2 layer\(s\), 1\.0 MiB in [\d.]+ s, [\d.]+ (B|KiB|MiB|GiB)\/s$/);
    expect(lines).toHaveLength(2);
    expect(f.text()).not.toContain('\x1b');
  });

  it('tty: false forces plain lines on a terminal; quiet prints nothing', () => {
    const f = fakeStream(true);
    const p = createProgress({ stream: f.stream, tty: false });
    p.layerStart!(0, layer('a', 5));
    p.done();
    expect(f.text()).toMatch(/^fetched 1 layer\(s\), 5 B in [\d.]+ s, [\d.]+ (B|KiB|MiB|GiB)\/s\n$/);
    const q = fakeStream(true);
    const quiet = createProgress({ stream: q.stream, quiet: true });
    quiet.info('x');
    quiet.layerStart?.(0, layer('a', 5));
    quiet.done();
    expect(q.text()).toBe('');
  });
});
