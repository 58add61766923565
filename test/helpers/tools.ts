import { execFileSync, spawnSync } from 'node:child_process';

/**
 * System tools the suites run against. They are installed by scripts/ensure-system-deps.sh; a missing tool makes
 * the test that needs it FAIL loudly (never skip), so CI cannot go green without the real parts.
 */
export function requireTool(name: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`required tool "${name}" is not installed; run scripts/ensure-system-deps.sh as root`);
  return r.stdout.trim();
}

export function nixHashFlatBase32(file: string): string {
  requireTool('nix-hash');
  return execFileSync('nix-hash', ['--flat', '--type', 'sha256', '--base32', file], { encoding: 'utf8' }).trim();
}

export function nixHashFileSRI(file: string): string {
  requireTool('nix');
  return execFileSync('nix', ['--extra-experimental-features', 'nix-command', 'hash', 'file', '--type', 'sha256', file], {
    encoding: 'utf8',
  }).trim();
}
