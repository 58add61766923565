import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { requireTool } from '../helpers/tools.js';

/**
 * The benchmark harness (bench/run.mjs) at its tiny size, one run: it must complete, every identity check it makes
 * (pull archive == skopeo's, prefetch hash == nix-hash of skopeo's archive, copies keep the manifest digest, push
 * and stream deterministic) must hold, and the table must have every row. No timing is asserted. Needs dist/ built.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const ROWS = [
  'startup',
  'startup-pull',
  'startup-prefetch',
  'startup-push',
  'startup-hash',
  'startup-inspect',
  'pull',
  'prefetch',
  'copy',
  'stream',
  'push-cold',
  'push-warm',
  'push-fresh',
  'push-fresh-changed',
  'push-warm-store',
  'floor-gunzip',
];

describe('npm run bench (tiny, 1 run)', () => {
  test('completes, outputs identical, every row in the table', async () => {
    for (const tool of ['docker-registry', 'skopeo', 'nix-hash', 'nix-store']) requireTool(tool);
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-bench-smoke-'));
    try {
      const out = join(dir, 'RESULTS.md');
      const json = join(dir, 'results.json');
      const child = spawn('node', [join(ROOT, 'bench/run.mjs'), '--size', 'tiny', '--runs', '1', '--out', out, '--json', json], {
        env: { ...process.env, BENCH_TMPDIR: dir, BENCH_NO_REBUNDLE: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const [code] = await once(child, 'exit');
      expect(code, stderr).toBe(0);

      const r = JSON.parse(readFileSync(json, 'utf8'));
      expect(r.rows.map((x: { id: string }) => x.id).sort()).toEqual([...ROWS].sort());
      expect(r.checks.length).toBe(10); // "identical across runs" needs a 2nd run
      for (const c of r.checks) expect(c, c.what).toMatchObject({ ok: true });
      for (const row of r.rows) {
        expect(row.wall.median, row.id).toBeGreaterThan(0);
        expect(row.rssMB, row.id).toBeGreaterThan(0);
        if (row.id !== 'floor-gunzip') expect(row.baseWall?.median, row.id).toBeGreaterThan(0);
      }
      // rows whose work has codec or hash passes get the machine's floor for them (bench/floors.mjs)
      const floored = r.rows.filter((x: { floor?: number }) => x.floor !== undefined).map((x: { id: string }) => x.id);
      expect(floored.sort()).toEqual(['copy', 'prefetch', 'pull', 'push-cold', 'push-fresh', 'push-fresh-changed', 'stream']);
      for (const row of r.rows) if (row.floor !== undefined) expect(row.xFloor, row.id).toBeCloseTo(row.wall.median / row.floor, 6);
      // the markdown written and the table printed are the same table, with one line per row
      const md = readFileSync(out, 'utf8');
      const tableLines = (s: string) => s.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| benchmark'));
      expect(tableLines(md)).toEqual(tableLines(stdout));
      expect(tableLines(md).length).toBe(ROWS.length);
      for (const row of r.rows) expect(md).toContain(`| ${row.what} |`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
