import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

// Repeatable push flags take one value per occurrence, in any position (as skopeo, crane and regctl do):
// `--additional-tag v2 conf.json docker://…` must not swallow the positionals that follow.
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');
let storeRoot: string;
let tmp: string;
let reg: Distribution;

const push = (...args: string[]) => runCli(['push', ...args, '--store-root', storeRoot, '--tls-verify=false'], { cacheHome: join(tmp, 'cache') });
const tags = (repo: string): string[] =>
  JSON.parse(execFileSync('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`], { encoding: 'utf8' })).Tags.sort();

beforeAll(async () => {
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-flag-order-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('repeatable push flags in any position', () => {
  it.each([
    ['--additional-tag before the positionals', (d: string) => ['--additional-tag', 'v2', CONF, d]],
    ['--additional-tag= before the positionals', (d: string) => ['--additional-tag=v2', CONF, d]],
    ['--additional-tag between the positionals', (d: string) => [CONF, '--additional-tag', 'v2', d]],
    ['--additional-tag after the positionals', (d: string) => [CONF, d, '--additional-tag', 'v2']],
    ['--additional-tag twice, first', (d: string) => ['--additional-tag', 'v2', '--additional-tag', 'v3', CONF, d]],
  ])(
    '%s',
    async (name, args) => {
      const repo = `order/${name
        .replace(/[^a-z0-9]+/gi, '-')
        .toLowerCase()
        .replace(/^-|-$/g, '')}`;
      const r = await push(...args(`docker://${reg.host}/${repo}:1`));
      expect(r.stderr).not.toMatch(/missing argument/);
      expect(r.status).toBe(0);
      expect(tags(repo)).toEqual(name.includes('twice') ? ['1', 'v2', 'v3'] : ['1', 'v2']);
    },
    120_000,
  );

  it.each([
    ['--mount-from before the positionals', (d: string) => ['--mount-from', 'order/base', CONF, d]],
    ['--mount-from= before the positionals', (d: string) => ['--mount-from=order/base', CONF, d]],
    ['--mount-from after the positionals', (d: string) => [CONF, d, '--mount-from', 'order/base']],
  ])(
    '%s',
    async (name, args) => {
      const repo = `mount/${name
        .replace(/[^a-z0-9]+/gi, '-')
        .toLowerCase()
        .replace(/^-|-$/g, '')}`;
      const r = await push(...args(`docker://${reg.host}/${repo}:1`));
      expect(r.stderr).not.toMatch(/missing argument/);
      expect(r.status).toBe(0);
      expect(tags(repo)).toEqual(['1']);
    },
    120_000,
  );

  it.each([
    ['--platform-conf before the destination', (d: string) => ['--platform-conf', `linux/amd64=${CONF}`, d]],
    ['--platform-conf= before the destination', (d: string) => [`--platform-conf=linux/amd64=${CONF}`, d]],
    ['--platform-conf after the destination', (d: string) => [d, '--platform-conf', `linux/amd64=${CONF}`]],
  ])(
    '%s',
    async (name, args) => {
      const repo = `multi/${name
        .replace(/[^a-z0-9]+/gi, '-')
        .toLowerCase()
        .replace(/^-|-$/g, '')}`;
      const r = await push(...args(`docker://${reg.host}/${repo}:1`));
      expect(r.stderr).not.toMatch(/missing argument/);
      expect(r.status).toBe(0);
      expect(tags(repo)).toEqual(['1']);
    },
    120_000,
  );
});
