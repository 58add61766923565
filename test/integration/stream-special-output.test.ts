import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

/**
 * `nixreg stream -o` into a FIFO: written into like skopeo does, never replaced (needs a built dist/). Devices take
 * the same path; no test writes to a real device node, which a regression would replace when run as root.
 */
const BIN = join(FIXTURES, '..', '..', 'bin', 'nixreg.js');
const CONF = join(FIXTURES, 'cases', 'a-defaults', 'conf.json');

let root: string;
let work: string;
beforeAll(async () => {
  root = await buildStoreTree();
  work = mkdtempSync(join(tmpdir(), 'nixreg-stream-special-'));
});
afterAll(async () => {
  if (root) await removeStoreTree(root);
  if (work) rmSync(work, { recursive: true, force: true });
});

const nixreg = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 });
  return { status: r.status, stderr: r.stderr.toString() };
};

describe('nixreg stream -o SPECIAL', () => {
  it('writes into a FIFO with a reader (with and without --force), the same bytes as a file', async () => {
    const plain = join(work, 'plain.tar');
    expect(nixreg(['stream', CONF, '--store-root', root, '-o', plain]).status).toBe(0);
    for (const force of [[], ['--force']]) {
      const fifo = join(work, `fifo${force.length}`);
      const copy = join(work, `copy${force.length}.tar`);
      execFileSync('mkfifo', [fifo]);
      const copyFd = openSync(copy, 'w');
      const reader = spawn('cat', [fifo], { stdio: ['ignore', copyFd, 'ignore'] });
      closeSync(copyFd);
      const done = new Promise((r) => reader.on('close', r));
      try {
        const r = nixreg(['stream', CONF, '--store-root', root, '-o', fifo, ...force]);
        expect(r.stderr).not.toContain('already exists');
        expect(r.status).toBe(0);
        await done;
      } finally {
        reader.kill();
      }
      expect(statSync(fifo).isFIFO()).toBe(true);
      expect(readFileSync(copy).equals(readFileSync(plain))).toBe(true);
    }
    expect(readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  }, 120_000);
});
