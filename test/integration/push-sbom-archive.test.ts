import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, runCli } from '../helpers/cli.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, FIXTURES, removeStoreTree } from '../helpers/store-tree.js';

/**
 * `push --sbom` / `--provenance` of an image archive given as a plain file name (no docker-archive: prefix): the
 * archive names no store paths, so the push is refused with one usage line before anything reaches the registry
 * (distribution's log shows no request on the repository). Needs a built bin/.
 */
const CASE = join(FIXTURES, 'cases/a-defaults');

let tmp: string;
let storeRoot: string;
let reg: Distribution;
let archive: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-sbom-archive-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  archive = join(tmp, 'image.tar');
  const s = await runCli(['stream', join(CASE, 'conf.json'), '--store-root', storeRoot, '-o', archive], { cacheHome: join(tmp, 'cache') });
  if (s.status !== 0) throw new Error(`stream failed: ${s.stderr}`);
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('push --sbom of an image archive file', () => {
  for (const flags of [['--sbom', 'cyclonedx'], ['--provenance']])
    it(`${flags[0]}: refused before any upload, one line, exit 2`, async () => {
      const repo = `sbom/${flags[0]!.slice(2)}`;
      const r = await runCli(['push', archive, `docker://${reg.host}/${repo}:1`, '--tls-verify=false', ...flags], { cacheHome: join(tmp, 'cache') });
      expect(r.status, r.stderr).toBe(2);
      const lines = errorLines(r.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^nixreg: --sbom and --provenance need a conf\.json or --path source/);
      expect(lines[0]).not.toContain('pushed');
      expect(r.stdout).toBe('');
      const log = readFileSync(reg.logFile, 'utf8');
      expect(log).not.toContain(`/v2/${repo}/`);
    }, 120_000);
});
