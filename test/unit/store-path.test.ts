import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedOutputPath, pullImageName } from '../../src/nix/store-path.js';
import { requireTool } from '../helpers/tools.js';

describe('fixed-output store paths', () => {
  it('equals what nix-store --add-fixed sha256 gives (Debian nix-bin)', () => {
    requireTool('nix-store');
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-storepath-'));
    for (const [name, content] of [
      ['docker-image-nixos-nix-2.19.3.tar', 'a tar'],
      ['docker-image-localhost-5000-foo-latest.tar', 'x'.repeat(5000)],
    ] as const) {
      const f = join(dir, name);
      writeFileSync(f, content);
      const expected = execFileSync('nix-store', ['--add-fixed', 'sha256', f], { encoding: 'utf8' }).trim();
      expect(fixedOutputPath(createHash('sha256').update(content).digest(), name)).toBe(expected);
    }
  });

  it("names files like pullImage's fixName", () => {
    expect(pullImageName('nixos/nix', '2.19.3')).toBe('docker-image-nixos-nix-2.19.3.tar');
    expect(pullImageName('localhost:5000/foo', 'latest')).toBe('docker-image-localhost-5000-foo-latest.tar');
  });
});
