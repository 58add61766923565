import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliSync } from '../helpers/cli.js';

// Runs the built CLI (dist/ must be built: `npx tsc -p tsconfig.json`; npm test does it).
const root = join(import.meta.dirname, '../..');
const fixtures = join(root, 'test/fixtures/layering');
const nixreg = (...args: string[]) => runCliSync(args);

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-layers-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('nixreg layers', () => {
  for (const f of readdirSync(fixtures).filter((x) => /^(a-|c-|f-|synthetic-(diamond-auto-4|deep-chain-popularity-200|ties-auto-3))/.test(x))) {
    it(`reproduces ${f}`, () => {
      const fx = JSON.parse(readFileSync(join(fixtures, f), 'utf8'));
      // the .attrs.json shape for auto-layer, the bare list for popularity: both inputs are accepted
      const graph = join(tmp, `${f}.graph.json`);
      writeFileSync(graph, JSON.stringify(fx.algorithm === 'popularity' ? fx.graph : { graph: fx.graph }));
      const exclude = join(tmp, `${f}.exclude`);
      writeFileSync(exclude, fx.exclude.map((p: string) => p + '\n').join(''));
      const args = ['layers', graph, '--max-layers', String(fx.maxLayers), '--from-image-layers', String(fx.fromImageLayers), '--exclude', exclude];
      if (fx.algorithm === 'popularity') args.push('--algorithm', 'popularity');
      const r = nixreg(...args);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(fx.store_layers);
      // auto-layer: byte-identical to the script's own stdout (json.dumps formatting)
      if (fx.algorithm !== 'popularity') expect(r.stdout).toBe(fx.stdout.endsWith('\n') ? fx.stdout : fx.stdout + '\n');
    });
  }

  it('defaults to maxLayers 100 and auto-layer', () => {
    const fx = JSON.parse(readFileSync(join(fixtures, 'synthetic-diamond-auto-100.json'), 'utf8'));
    const graph = join(tmp, 'diamond.json');
    writeFileSync(graph, JSON.stringify(fx.graph));
    const exclude = join(tmp, 'diamond.exclude');
    writeFileSync(exclude, fx.exclude.join('\n'));
    const r = nixreg('layers', graph, '--exclude', exclude);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(fx.store_layers);
  });

  it('max-layers < 2 is a one-line usage error (exit 2)', () => {
    const graph = join(tmp, 'tiny.json');
    writeFileSync(graph, JSON.stringify([{ path: '/nix/store/a-x', narSize: 1, references: [] }]));
    for (const n of ['1', '0', 'abc']) {
      const r = nixreg('layers', graph, '--max-layers', n);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^nixreg: --max-layers must be an integer of at least 2.*\n$/);
    }
    const r = nixreg('layers', graph, '--max-layers', '3', '--from-image-layers', '2');
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('bad graph input is a one-line error', () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{"graph": 1}');
    let r = nixreg('layers', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^nixreg: graph .*bad\.json: expected a JSON list.*\n$/);
    r = nixreg('layers', join(tmp, 'missing.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^nixreg: cannot read graph .*missing\.json: .*\n$/);
  });
});
