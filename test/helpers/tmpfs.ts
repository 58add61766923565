import { execFileSync } from 'node:child_process';

/** Mounts a 1 MiB tmpfs on `dir` (a full disk on demand); needs root with CAP_SYS_ADMIN. Returns the unmount. */
export function mountTinyTmpfs(dir: string): () => void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`cannot mount a 1 MiB tmpfs on ${dir} (this test needs root with CAP_SYS_ADMIN): ${(err as { stderr?: Buffer }).stderr ?? err}`);
  }
  return () => execFileSync('umount', ['-l', dir]);
}
