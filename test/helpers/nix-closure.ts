import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's nix-bin runs single-user as root here: no sandbox, no build users. */
export const NIX_OPTS = ['--option', 'sandbox', 'false', '--option', 'build-users-group', ''];

/**
 * Build a small closure of `builtins.derivation`s (only /bin/sh, no nixpkgs) with the real Nix and return the
 * store path of `app`. `bindings` is Nix `let` text that may use `mk = name: script: <derivation>` and must
 * define `app`. A fresh salt per call so the build really runs (a cached path would test nothing).
 */
export function buildTestClosure(dir: string, bindings: string): string {
  const expr = `{ salt }:
let
  mk = name: script: derivation { inherit name salt; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; PATH = "/usr/bin:/bin"; };
${bindings}
in app
`;
  const file = join(dir, 'closure.nix');
  writeFileSync(file, expr);
  return execFileSync('nix-build', [file, '--argstr', 'salt', `${Date.now()}-${process.pid}`, '--no-out-link', ...NIX_OPTS], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}
