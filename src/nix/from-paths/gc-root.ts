import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { NixregError } from '../../errors.js';

const run = promisify(execFile);

/**
 * Keep `storePath` alive for the Nix garbage collector through the symlink `link`, as nix-build's `result`
 * link does: `nix-store --realise --add-root LINK --indirect PATH` writes LINK and registers it under
 * /nix/var/nix/gcroots/auto (https://nixos.org/manual/nix/stable/command-ref/nix-store/realise.html).
 * Deleting the link frees the path at the next GC.
 */
export async function addGcRoot(storePath: string, link: string): Promise<void> {
  try {
    await run('nix-store', ['--realise', '--add-root', resolve(link), '--indirect', storePath], { encoding: 'utf8' });
  } catch (err) {
    const detail =
      ((err as { stderr?: string }).stderr ?? String(err))
        .trim()
        .split('\n')
        .filter((l) => !/^warning:/.test(l))
        .pop() ?? '';
    throw new NixregError(
      `cannot make the GC root ${link} for ${storePath}: ${detail}; give --gc-root PATH elsewhere or --no-gc-root (then a nix-store --gc can remove it)`,
    );
  }
}
