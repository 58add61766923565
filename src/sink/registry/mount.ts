import { ExitCode, NixregError } from '../../errors.js';
import type { RegistryClientApi } from '../../registry/types.js';

/**
 * Cross-repository mount (`POST ?mount=&from=`) from the first of `candidates` that has the blob. A 202 means
 * "not mounted, here is an upload session instead": that session is cancelled and the next candidate tried.
 * A 401/403 (no pull access to `from`, which registries answer instead of 202) is a refused mount too: the
 * caller then uploads, and a real lack of push access shows on that upload.
 * Returns the repository mounted from, or undefined.
 */
export async function mountFromAny(
  client: Pick<RegistryClientApi, 'startUpload' | 'cancelUpload'>,
  digest: string,
  candidates: readonly string[],
  log?: (line: string) => void,
): Promise<string | undefined> {
  for (const from of candidates) {
    let start;
    try {
      start = await client.startUpload({ mount: digest, from });
    } catch (e) {
      if (!(e instanceof NixregError) || e.exitCode !== ExitCode.auth) throw e;
      log?.(`${digest}: mount from ${from} refused (${e.message}); uploading instead`);
      continue;
    }
    if (start.mounted) return from;
    log?.(`${digest}: not mounted from ${from}; cancelling that upload session`);
    await client.cancelUpload(start.location).catch(() => {});
  }
  return undefined;
}

/** Repository names of `registry` among `registry/repository` entries, and the extra names, once each, without `except`. */
export function mountCandidates(registry: string, extra: readonly string[], seen: readonly string[], except: readonly string[]): string[] {
  const prefix = `${registry}/`;
  return [...extra, ...seen.filter((r) => r.startsWith(prefix)).map((r) => r.slice(prefix.length))].filter(
    (r, i, all) => !except.includes(r) && all.indexOf(r) === i,
  );
}
