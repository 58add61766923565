import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'check-imports.mjs');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'nixreg-imports-'));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}
const check = (src: string) => spawnSync(process.execPath, [SCRIPT, src], { encoding: 'utf8' });

describe('scripts/check-imports.mjs', () => {
  it('passes on the repository', () => {
    const r = check(join(__dirname, '..', '..', 'src'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('fails on library code importing cli/, naming the import', () => {
    const src = tree({
      'cli/live-rows.ts': 'export const x = 1;\n',
      'sink/progress.ts': "import { x } from '../cli/live-rows.js';\nexport const y = x;\n",
    });
    const r = check(src);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('upward import: sink/progress.ts -> cli/live-rows.ts');
  });

  it('fails on a cycle, even of type-only imports', () => {
    const src = tree({
      'nix/a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
      'nix/b.ts': "import type { A } from './a.js';\nexport interface B { a?: A }\n",
    });
    const r = check(src);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cycle: nix\/(a|b)\.ts -> nix\/(a|b)\.ts -> nix\/(a|b)\.ts/);
  });

  it('fails on a folder that has no layer, and allows imports downward', () => {
    const src = tree({
      'errors.ts': 'export const e = 1;\n',
      'registry/client.ts': "import { e } from '../errors.js';\nexport const c = e;\n",
      'newthing/x.ts': 'export const x = 1;\n',
    });
    const r = check(src);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('newthing/x.ts: folder newthing/ has no layer');
    expect(r.stderr).not.toContain('registry/client.ts');
  });

  it('fails on one exported type name defined in two files', () => {
    const src = tree({
      'image/types.ts': 'export interface ImageSink { a: number }\n',
      'nix/sink.ts': 'export interface ImageSink { b: number }\n',
    });
    const r = check(src);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/exported type ImageSink is defined twice: (image\/types|nix\/sink)\.ts and (image\/types|nix\/sink)\.ts/);
  });
});
