import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * `mkdir -p`, one level at a time: Node's mkdir({ recursive: true }) never returns when the kernel answers ENOENT
 * for a directory whose parent exists (as /proc does: seen with Node 20.20).
 */
export async function makeDirs(path: string, mode?: number): Promise<void> {
  const opts = mode === undefined ? {} : { mode };
  try {
    await mkdir(path, opts);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await stat(path)).isDirectory()) return;
    if (code !== 'ENOENT' || dirname(path) === path || (await isDir(dirname(path)))) throw err;
    await makeDirs(dirname(path), mode);
    await mkdir(path, opts).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e; // made by a concurrent run in between
    });
  }
}

const isDir = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );
