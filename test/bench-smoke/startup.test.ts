import { describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { commands } from '../../src/cli/commands/index.js';

/**
 * The start-up shortcuts must not change what users see: `nixreg --help` served from the text rendered at build
 * time (bin/nixreg.js + scripts/bundle.mjs) equals what yargs in tsc's output prints, and a real command still runs
 * through the bundle or tsc's output. No timing asserted (the bench measures it). Needs `npm run build`.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const node = (args: string[]) => spawnSync('node', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '' } });
const yargsHelp = () =>
  node(['--input-type=module', '-e', `const { main } = await import(${JSON.stringify(join(ROOT, 'dist/src/cli/main.js'))}); await main(['--help']);`]);

describe('nixreg start-up', () => {
  test('--help and -h print exactly what yargs prints', () => {
    const want = yargsHelp();
    expect(want.status, want.stderr).toBe(0);
    expect(want.stdout).toContain('Commands:');
    for (const flag of ['--help', '-h']) {
      const got = node([join(ROOT, 'bin/nixreg.js'), flag]);
      expect(got.status, got.stderr).toBe(0);
      expect(got.stdout).toBe(want.stdout);
      expect(got.stderr).toBe('');
    }
  });

  // Each command's --help is pre-rendered at build time (scripts/bundle.mjs) at the two widths main.ts picks without a
  // narrower terminal: 100 when stdout is not a terminal (what the launcher serves here), 110 on a wide one. Both
  // must equal what yargs in tsc's output prints. pull's and prefetch's help hold non-ASCII text (→, —), which takes
  // string-width's segmenter path rather than its ASCII fast path.
  const tscHelp = (args: string[], width: number) =>
    node([
      '--input-type=module',
      '-e',
      `${width === 100 ? '' : `Object.defineProperty(process.stdout, 'columns', { value: ${width} });`} const { main } = await import(${JSON.stringify(join(ROOT, 'dist/src/cli/main.js'))}); await main(${JSON.stringify(args)});`,
    ]);
  test.each(commands.map((c) => c.name))('`%s --help` and `-h` through the launcher equal tsc output, at both widths', (cmd) => {
    const want = tscHelp([cmd, '--help'], 100);
    expect(want.status, want.stderr).toBe(0);
    for (const flag of ['--help', '-h']) {
      const got = node([join(ROOT, 'bin/nixreg.js'), cmd, flag]);
      expect(got.status, got.stderr).toBe(0);
      expect(got.stdout).toBe(want.stdout);
      expect(got.stderr).toBe('');
    }
    const wide = tscHelp([cmd, '--help'], 110);
    expect(wide.status, wide.stderr).toBe(0);
    expect(readFileSync(join(ROOT, `dist/bundle/help/${cmd}-110.txt`), 'utf8')).toBe(wide.stdout);
  });

  // What a command parses with (its chunk and the chunks it imports statically) must not hold the HTTP client or
  // the image pipeline: those load in the handler, so --help at another width, a usage error, and the parse itself
  // do not pay for them. esbuild marks each bundled npm file with a `// node_modules/...` comment.
  test.each([
    'pull',
    'prefetch',
    'push',
    'inspect',
    'copy',
    'export',
    'tags',
    'digest',
    'tag',
    'delete',
    'login',
    'logout',
    'index',
    'gc',
    'sign',
    'verify',
    'referrers',
  ])('the `%s` command chunk imports no undici statically', (cmd) => {
    const dir = join(ROOT, 'dist/bundle');
    const main = readFileSync(join(dir, 'main.js'), 'utf8');
    const file = cmd === 'index' ? 'index-cmd' : cmd;
    const entry = new RegExp(`import\\("\\./(${file}-[A-Z0-9]+\\.js)"\\)`).exec(main)?.[1];
    expect(entry, `main.js loads ${file}-*.js`).toBeDefined();
    const seen = new Set<string>();
    const todo = [entry!];
    while (todo.length) {
      const f = todo.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/^import[^;]*?from\s*"\.\/([^"]+)"/gms)) todo.push(m[1]!);
    }
    const withUndici = [...seen].filter((f) => readFileSync(join(dir, f), 'utf8').includes('// node_modules/undici/'));
    expect(withUndici).toEqual([]);
  });

  test('commands still run through the launcher (hash of a known string, usage error exit code)', () => {
    const ok = node([join(ROOT, 'bin/nixreg.js'), 'hash', 'sha256:' + 'ab'.repeat(32), '--to', 'nix32']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toMatch(/^[0-9a-df-np-sv-z]{52}$/);
    const bad = node([join(ROOT, 'bin/nixreg.js'), 'no-such-command']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^nixreg: /);
  });
});
