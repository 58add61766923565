import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';

// A conf written by `nixreg build` names its customisation layer by store path; without a GC root, nix-store --gc
// may delete it and the conf then fails. The root is a symlink like nix-build's `result`, registered with Nix.
let tmp: string;
let app: string;
let cacheHome: string;

beforeAll(() => {
  for (const t of ['nix-build', 'nix-store']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-gcroot-'));
  cacheHome = join(tmp, 'cache');
  app = buildTestClosure(tmp, `app = mk "nixreg-gcroot-app" "mkdir -p $out/bin && echo hi > $out/bin/hi";`);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const nixreg = (...args: string[]) => runCliSync(args, { cacheHome });
/** `nix-store --delete PATH`: refused (non-zero) while a GC root keeps PATH alive. */
const tryDelete = (p: string) => spawnSync('nix-store', ['--delete', p], { encoding: 'utf8' });

describe('nixreg build: GC root for the customisation layer', () => {
  it('--write-conf CONF links CONF.gcroot to the layer, and nix-store --delete refuses it', () => {
    const conf = join(tmp, 'conf.json');
    const r = nixreg('build', '--name', `gcroot-${process.pid}`, '--path', app, '--write-conf', conf);
    expect(r.status).toBe(0);
    const layer = JSON.parse(readFileSync(conf, 'utf8')).customisation_layer as string;
    expect(layer).toMatch(/^\/nix\/store\/[0-9a-z]{32}-/);
    const link = `${conf}.gcroot`;
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(layer);
    const del = tryDelete(layer);
    expect(del.status).not.toBe(0);
    expect(existsSync(layer)).toBe(true);
    // the conf still streams after a GC attempt
    const s = nixreg('stream', conf, '-o', join(tmp, 'after.tar'), '-q');
    expect(s.status).toBe(0);
  }, 120_000);

  it('--gc-root PATH puts the link there; --no-gc-root makes none', () => {
    const conf = join(tmp, 'conf2.json');
    const link = join(tmp, 'my-root');
    expect(nixreg('build', '--name', `gcroot2-${process.pid}`, '--path', app, '--write-conf', conf, '--gc-root', link).status).toBe(0);
    expect(readlinkSync(link)).toBe(JSON.parse(readFileSync(conf, 'utf8')).customisation_layer);
    expect(existsSync(`${conf}.gcroot`)).toBe(false);
    const conf3 = join(tmp, 'conf3.json');
    expect(nixreg('build', '--name', `gcroot3-${process.pid}`, '--path', app, '--write-conf', conf3, '--no-gc-root').status).toBe(0);
    expect(existsSync(`${conf3}.gcroot`)).toBe(false);
  }, 120_000);

  it('a root that cannot be made: one nixreg line naming it and what to do', () => {
    writeFileSync(join(tmp, 'a-file'), 'x');
    const r = nixreg(
      'build',
      '--name',
      `gcroot4-${process.pid}`,
      '--path',
      app,
      '--write-conf',
      join(tmp, 'conf4.json'),
      '--gc-root',
      join(tmp, 'a-file', 'root'),
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^nixreg: cannot make the GC root .*a-file\/root .*--no-gc-root.*\n$/);
  }, 120_000);
});

describe('-q/--quiet on stream and build', () => {
  it('build and stream print the streamLayeredImage log without -q and nothing with it', () => {
    const conf = join(tmp, 'quiet.json');
    const loud = nixreg('build', '--name', `quiet-${process.pid}`, '--path', app, '--write-conf', conf, '-o', join(tmp, 'loud.tar'));
    expect(loud.status).toBe(0);
    expect(loud.stderr).toContain('Done.');
    const quiet = nixreg('build', '--name', `quiet-${process.pid}`, '--path', app, '-o', join(tmp, 'quiet.tar'), '-q');
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).toBe('');
    const s = nixreg('stream', conf, '-o', join(tmp, 's.tar'));
    expect(s.stderr).toContain('Done.');
    const sq = nixreg('stream', conf, '--quiet', '-o', join(tmp, 'sq.tar'));
    expect(sq.status).toBe(0);
    expect(sq.stderr).toBe('');
    expect(readFileSync(join(tmp, 'sq.tar')).equals(readFileSync(join(tmp, 's.tar')))).toBe(true);
  }, 120_000);
});
