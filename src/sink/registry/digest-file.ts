import { openAtomic } from '../../util/atomic-file.js';

/** `--digestfile FILE`: the manifest digest, no newline (as skopeo writes it), replaced atomically. */
export async function writeDigestFile(file: string, digest: string): Promise<void> {
  const out = await openAtomic(file, { force: true });
  try {
    out.stream.write(digest);
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
}
