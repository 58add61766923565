import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { FIXTURES } from '../helpers/store-tree.js';

// `merge` takes the last input's compression (dockerTools.mergeImages' rule): it says so when that is not what the
// output's name says, and --json's `size` is the file's size (the tar inside is `uncompressedSize`).
const PLAIN = join(FIXTURES, 'blobs', '1ec5009871dc8fbbe26c7a86f0d275425cd8c9bb0a1d774aa2fe01e393c7796b'); // skopeo docker-archive
const GZ = join(FIXTURES, 'blobs', '5a71a418a27dee6bbb868404aaa50f7320d341f1e9d62d5314e34a3504652908'); // the same image, gzip'd
let work: string;
const nixreg = (...args: string[]) => runCliSync(args);
const notes = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('nixreg: note:'));

beforeAll(() => {
  requireTool('zstd');
  work = mkdtempSync(join(tmpdir(), 'nixreg-merge-note-'));
  execFileSync('zstd', ['-q', '-f', PLAIN, '-o', join(work, 'in.tar.zst')]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('merge: compression notice and size', () => {
  test("zstd bytes under a .tar name: one note naming the compression, the file and the flag; size is the file's", () => {
    const out = join(work, 'merged.tar');
    const r = nixreg('merge', PLAIN, join(work, 'in.tar.zst'), '-o', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(notes(r.stderr)).toEqual([
      `nixreg: note: writing a zstd-compressed archive to ${out} (the last input's compression, as dockerTools.mergeImages does); give --compress none for what the name says`,
    ]);
    const j = JSON.parse(r.stdout);
    expect(j.compress).toBe('zstd');
    expect(j.size).toBe(statSync(out).size);
    expect(j.uncompressedSize).toBe(execFileSync('zstd', ['-dc', out], { maxBuffer: 1 << 28 }).length);
    expect(j.uncompressedSize).toBeGreaterThan(j.size);
  });

  test('gzip under .tar.gz, plain under .tar, an explicit --compress, a name without suffix: no note', () => {
    const cases: string[][] = [
      [PLAIN, GZ, '-o', join(work, 'ok.tar.gz')],
      [GZ, PLAIN, '-o', join(work, 'ok.tar')],
      [PLAIN, GZ, '-o', join(work, 'forced.tar'), '--compress', 'gz'],
      [PLAIN, GZ, '-o', join(work, 'noname')],
    ];
    for (const args of cases) {
      const r = nixreg('merge', ...args, '--json');
      expect(r.status, r.stderr).toBe(0);
      expect(notes(r.stderr)).toEqual([]);
      const file = args[args.indexOf('-o') + 1]!;
      const j = JSON.parse(r.stdout);
      expect(j.size).toBe(statSync(file).size);
      const bytes = readFileSync(file);
      expect(j.uncompressedSize).toBe(j.compress === 'gz' ? gunzipSync(bytes).length : bytes.length);
    }
  });

  test('a plain tar under a .gz name: the note says so', () => {
    const out = join(work, 'plain.tar.gz');
    const r = nixreg('merge', GZ, PLAIN, '-o', out);
    expect(r.status, r.stderr).toBe(0);
    expect(notes(r.stderr)).toEqual([
      `nixreg: note: writing an uncompressed tar to ${out} (the last input's compression, as dockerTools.mergeImages does); give --compress gz for what the name says`,
    ]);
  });
});
