import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/cli/progress.js';
import { createPushProgress } from '../../src/cli/push-progress.js';

// Totals, rate and ETA under a clock the test moves, so every figure is exact; the config is not a layer.
function fakeStream(isTTY: boolean) {
  let out = '';
  const stream = { isTTY, columns: 200, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out, plain: () => out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '') };
}
const D = (c: string) => `sha256:${c.repeat(64)}`;
const MiB = 1024 * 1024;
const layer = (c: string, size: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D(c), size });
const clockAt = (start: number) => {
  const c = { now: start, clock: () => c.now };
  return c;
};

describe('pull progress totals', () => {
  it('terminal: total bytes of all layers, rate and ETA, repeats left out; a summary at the end', () => {
    const f = fakeStream(true);
    const c = clockAt(1000);
    const p = createProgress({ stream: f.stream, clock: c.clock });
    p.begin!([layer('a', 6 * MiB), layer('b', 2 * MiB), layer('a', 6 * MiB)]);
    p.layerSkipped!(2, 0);
    p.layerStart!(0, layer('a', 6 * MiB));
    p.layerStart!(1, layer('b', 2 * MiB));
    c.now += 2000;
    p.layerBytes!(0, 4 * MiB); // 4 MiB of 8 in 2 s: 2 MiB/s, 2 s left
    const frame = f.plain().split('\n');
    expect(frame).toContain('total: 0/2 layer(s), 4.0 MiB / 8.0 MiB, 2.0 MiB/s, ETA 0:02');
    p.layerBytes!(0, 2 * MiB);
    p.layerBytes!(1, 2 * MiB);
    p.layerWritten!(0);
    p.layerWritten!(1);
    c.now += 2000;
    p.done();
    const lines = f.plain().trimEnd().split('\n');
    expect(lines.at(-2)).toBe('total: 2/2 layer(s), 8.0 MiB / 8.0 MiB, 2.0 MiB/s');
    expect(lines.at(-1)).toBe('fetched 2 layer(s), 8.0 MiB in 4.0 s, 2.0 MiB/s');
  });

  it('not a terminal: the plan first, the summary last', () => {
    const f = fakeStream(false);
    const c = clockAt(0);
    const p = createProgress({ stream: f.stream, clock: c.clock });
    p.begin!([layer('a', 3 * MiB), layer('b', MiB)]);
    p.layerStart!(0, layer('a', 3 * MiB));
    p.layerBytes!(0, 3 * MiB);
    p.layerStart!(1, layer('b', MiB));
    p.layerBytes!(1, MiB);
    c.now = 500;
    p.done();
    expect(f.text()).toBe('fetching 2 layer(s), 4.0 MiB\nfetched 2 layer(s), 4.0 MiB in 0.5 s, 8.0 MiB/s\n');
  });
});

describe('push progress totals', () => {
  it('a registry copy: the config is shown as config, not counted; totals with ETA from the known sizes', () => {
    const f = fakeStream(true);
    const c = clockAt(0);
    const p = createPushProgress({ stream: f.stream, clock: c.clock });
    p.begin(4); // config + 3 layers, as a registry → registry copy reports them
    p.layerStart(0, 'cccccccccccc', { config: true, size: 1024 });
    p.layerStart(1, 'aaaaaaaaaaaa', { size: 4 * MiB });
    p.layerStart(2, 'bbbbbbbbbbbb', { size: 4 * MiB });
    p.layerStart(3, 'dddddddddddd', { size: 10 * MiB });
    p.layerDone(0, 'exists', D('c'), 1024);
    p.layerDone(3, 'exists', D('d'), 10 * MiB);
    p.layerUploading(1);
    c.now = 1000;
    p.layerBytes(1, 2 * MiB); // 2 MiB of the 8 still to send in 1 s
    p.layerDone(2, 'uploaded', D('b'), 4 * MiB);
    const rows = f.plain().split('\n');
    expect(rows).toContain('config cccccccccccc exists');
    expect(rows).toContain('layer 3/3 dddddddddddd exists');
    expect(rows).toContain('total: 2/3 layer(s) done, 2.0 MiB / 8.0 MiB, 2.0 MiB/s, ETA 0:03');
    p.layerBytes(1, 2 * MiB);
    p.layerDone(1, 'uploaded', D('a'), 4 * MiB);
    c.now = 2000;
    p.done();
    const lines = f.plain().trimEnd().split('\n');
    expect(lines.at(-1)).toBe('3 layer(s): 2 pushed (8.0 MiB), 1 already present, 0 mounted, in 2.0 s, 2.0 MiB/s');
    expect(f.plain()).not.toMatch(/4 layer/);
  });

  it('not a terminal: config line unnumbered, layers numbered without it, one summary', () => {
    const f = fakeStream(false);
    const c = clockAt(0);
    const p = createPushProgress({ stream: f.stream, clock: c.clock });
    p.begin(3);
    p.layerStart(0, 'x', { config: true, size: 10 });
    p.layerStart(1, 'y', { size: 100 });
    p.layerStart(2, 'z', { size: 100 });
    p.layerDone(0, 'uploaded', D('c'), 10);
    p.layerBytes(1, 100);
    p.layerDone(1, 'uploaded', D('a'), 100);
    p.layerDone(2, 'mounted', D('b'), 100, 'lib/base');
    c.now = 1000;
    p.done();
    expect(f.text()).toBe(
      'config cccccccccccc pushed 10 B\nlayer 1/2 aaaaaaaaaaaa pushed 100 B\nlayer 2/2 bbbbbbbbbbbb mounted from lib/base\n' +
        '2 layer(s): 1 pushed (100 B), 0 already present, 1 mounted, in 1.0 s, 100 B/s\n',
    );
  });
});

describe('pull progress over several images and retries', () => {
  it('two images (prefetch --platform all) add up; repeats are not announced; the same plan again starts afresh', () => {
    const f = fakeStream(false);
    const c = clockAt(0);
    const p = createProgress({ stream: f.stream, clock: c.clock });
    p.begin!([layer('a', MiB), layer('a', MiB)]);
    p.layerSkipped!(1, 0);
    p.layerStart!(0, layer('a', MiB));
    p.layerBytes!(0, 512 * 1024);
    // the same layers again: a retry on the other copy path, counted once
    p.begin!([layer('a', MiB), layer('a', MiB)]);
    p.layerSkipped!(1, 0);
    p.layerStart!(0, layer('a', MiB));
    p.layerBytes!(0, MiB);
    p.begin!([layer('b', 2 * MiB), layer('c', MiB)]);
    p.layerStart!(0, layer('b', 2 * MiB));
    p.layerBytes!(0, 2 * MiB);
    p.layerStart!(1, layer('c', MiB));
    p.layerBytes!(1, MiB);
    c.now = 1000;
    p.done();
    expect(f.text()).toBe(
      'fetching 1 layer(s), 1.0 MiB\nfetching 1 layer(s), 1.0 MiB\nfetching 2 layer(s), 3.0 MiB\nfetched 3 layer(s), 4.0 MiB in 1.0 s, 4.0 MiB/s\n',
    );
  });
});
