import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Ctrl-C must leave no half-written output: neither an atomic file's temp file nor a half-built OCI layout
// directory. Runs a child process on the compiled module (npm test builds dist/ first) and interrupts it.
const moduleUrl = pathToFileURL(join(import.meta.dirname, '../../dist/src/util/atomic-file.js')).href;

function interrupt(script: string, dir: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.once('data', () => p.kill('SIGINT'));
    p.on('error', reject);
    p.on('close', (code) => resolve(code));
  });
}

describe('atomic outputs on SIGINT', () => {
  it('removes the temp file of an unfinished openAtomic output and exits 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-atomic-'));
    try {
      const script = `import { openAtomic } from ${JSON.stringify(moduleUrl)};
        const out = await openAtomic(process.argv[1] + '/out.tar');
        out.stream.write('partial');
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);`;
      expect(await interrupt(script, dir)).toBe(130);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('removes a registered temp directory with its contents', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-atomic-'));
    try {
      const script = `import { removeOnSignal } from ${JSON.stringify(moduleUrl)};
        import { mkdirSync, writeFileSync } from 'node:fs';
        const tmp = process.argv[1] + '/.layout.tmp';
        mkdirSync(tmp + '/blobs/sha256', { recursive: true });
        writeFileSync(tmp + '/blobs/sha256/.partial-0', 'x');
        removeOnSignal(tmp);
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);`;
      expect(await interrupt(script, dir)).toBe(130);
      expect(existsSync(join(dir, '.layout.tmp'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a directory that was taken off the list (renamed into place)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-atomic-'));
    try {
      const script = `import { removeOnSignal } from ${JSON.stringify(moduleUrl)};
        import { mkdirSync } from 'node:fs';
        const tmp = process.argv[1] + '/layout';
        mkdirSync(tmp);
        removeOnSignal(tmp)();
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);`;
      expect(await interrupt(script, dir)).toBe(130);
      expect(existsSync(join(dir, 'layout'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
