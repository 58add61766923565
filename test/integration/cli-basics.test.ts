import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NIXREG_BIN } from '../helpers/cli.js';

const ROOT = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-cli-basics-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('nixreg --version', () => {
  it("prints nixreg's own version, whatever package.json is in the current directory", () => {
    writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'someone-else', version: '9.9.9' }));
    const r = spawnSync(process.execPath, [NIXREG_BIN, '--version'], { cwd: tmp, encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});

describe('package.json bin', () => {
  it('has a nix-prefetch-docker alias (the name nvfetcher and npins call) that runs prefetch', () => {
    const alias = pkg.bin['nix-prefetch-docker'];
    expect(alias).toBeDefined();
    const r = spawnSync(process.execPath, [join(ROOT, alias!), '--help'], { encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/--image-name/);
  });
});

describe('no tar on a terminal', () => {
  // util-linux script(1) gives the CLI a pseudo-terminal as stdout; -e returns the command's exit status
  const onTerminal = (args: string[]) => {
    const cmd = [process.execPath, NIXREG_BIN, ...args].map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const log = join(tmp, 'typescript');
    const r = spawnSync('script', ['-qec', cmd, log], { encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '' } });
    return { status: r.status, out: r.stdout };
  };
  it.each([
    ['stream without -o', ['stream', join(ROOT, 'test/fixtures/cases/a-defaults/conf.json')]],
    ['stream -o -', ['stream', join(ROOT, 'test/fixtures/cases/a-defaults/conf.json'), '-o', '-']],
    ['pull -o -', ['pull', '127.0.0.1:1/a/b:1', '-o', '-']],
  ])('%s: one line, exit 2, no bytes', (_what, args) => {
    const r = onTerminal(args);
    expect(r.status).toBe(2);
    expect(r.out.trim()).toMatch(/^nixreg: \w+: refusing to write a tar archive to a terminal; pass -o FILE/);
    expect(r.out.trim().split('\n')).toHaveLength(1);
  });
});

describe('--tls-verify help', () => {
  it.each(['pull', 'push', 'prefetch'])('%s --help says loopback registries use http', (cmd) => {
    const r = spawnSync(process.execPath, [NIXREG_BIN, cmd, '--help'], { encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '', COLUMNS: '400' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(
      /--tls-verify .*loopback registry \(127\.0\.0\.0\/8, ::1, localhost\) falls back to plain http when https fails/,
    );
  });
});

describe('stream given an archive', () => {
  it.each([
    [
      'a docker-archive tar',
      () => {
        const f = join(tmp, 'image.tar');
        spawnSync('tar', ['-cf', f, '-C', join(ROOT, 'test/fixtures/cases/a-defaults'), 'conf.json']);
        return f;
      },
    ],
    [
      'a gzip archive',
      () => {
        const f = join(tmp, 'image.tar.gz');
        writeFileSync(f, gzipSync(Buffer.from('x'.repeat(1000))));
        return f;
      },
    ],
  ])('%s: says it is an archive, not a conf.json', (_what, make) => {
    const f = make();
    const r = spawnSync(process.execPath, [NIXREG_BIN, 'stream', f, '-o', join(tmp, 'never.tar')], {
      encoding: 'utf8',
      env: { ...process.env, NIXREG_DEBUG: '' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `nixreg: stream: ${f} is an image archive, not a streamLayeredImage conf.json; stream builds from a conf (nixreg push, export and inspect take archives)\n`,
    );
    expect(existsSync(join(tmp, 'never.tar'))).toBe(false);
  });
});
