import { describe, expect, it } from 'vitest';
import { createPushProgress } from '../../src/cli/push-progress.js';

// What a person sees on stderr: a live per-layer table on a terminal, plain lines elsewhere, nothing with --quiet.
function fakeStream(isTTY: boolean) {
  let out = '';
  const stream = { isTTY, columns: 120, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}
const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('push progress display', () => {
  it('terminal: one redrawn row per layer with states, bytes and rate', () => {
    const f = fakeStream(true);
    const p = createPushProgress({ stream: f.stream });
    p.begin(3);
    p.layerStart(0, 'hello-2.12');
    p.layerStart(1, 'glibc-2.40');
    p.layerStart(2, 'customisation-layer');
    p.layerDone(0, 'exists', D('a'), 100);
    p.layerUploading(1);
    p.layerBytes(1, 3 * 1024 * 1024);
    p.layerDone(2, 'mounted', D('c'), 10, 'other/app');
    p.done();
    const screen = f.text();
    // the last frame: cursor up over the previous rows, then the three rows
    const last = screen.slice(screen.lastIndexOf('\x1b[4A'));
    const rows = last
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, ''));
    expect(rows).toHaveLength(5); // three layers, the totals line, the summary
    expect(rows[0]).toBe('layer 1/3 aaaaaaaaaaaa exists');
    expect(rows[1]).toMatch(/^layer 2\/3 glibc-2\.40 uploading 3\.0 MiB [\d.]+ (MiB|GiB)\/s$/);
    expect(rows[2]).toBe('layer 3/3 cccccccccccc mounted from other/app');
    expect(rows[3]).toMatch(/^total: 2\/3 layer\(s\) done, 3\.0 MiB, [\d.]+ (MiB|GiB)\/s$/);
    expect(rows[4]).toMatch(/^3 layer\(s\): 0 pushed \(0 B\), 1 already present, 1 mounted, in [\d.]+ s, [\d.]+ (MiB|GiB)\/s$/);
  });

  it('not a terminal: one line per finished layer and a summary', () => {
    const f = fakeStream(false);
    const p = createPushProgress({ stream: f.stream });
    p.begin(12);
    p.layerStart(0, 'x');
    p.layerDone(0, 'uploaded', D('b'), 2048);
    p.layerDone(11, 'exists', D('d'), 1);
    p.done();
    const lines = f.text().trimEnd().split('\n');
    expect(lines[0]).toBe('layer  1/12 bbbbbbbbbbbb pushed 2.0 KiB');
    expect(lines[1]).toBe('layer 12/12 dddddddddddd exists');
    expect(lines[2]).toMatch(/^12 layer\(s\): 1 pushed \(2\.0 KiB\), 1 already present, 0 mounted, in [\d.]+ s, [\d.]+ (B|KiB|MiB|GiB)\/s$/);
  });

  it('quiet: nothing', () => {
    const f = fakeStream(true);
    const p = createPushProgress({ stream: f.stream, quiet: true });
    p.begin(1);
    p.layerStart(0, 'x');
    p.layerDone(0, 'uploaded', D('b'), 1);
    p.done();
    expect(f.text()).toBe('');
  });
});
