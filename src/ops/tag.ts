import { usageError } from '../errors.js';
import { TAG_RE } from '../reference/reference.js';
import type { RegistryAccess } from '../registry/access.js';
import { refOf, withClient } from './registry-client.js';

export interface TagResult {
  source: string;
  digest: string;
  mediaType: string;
  tagged: string[];
}

/** Put the manifest `ref` names under more tags of its repository: the same bytes (so the same digest), no blob traffic. */
export async function addTags(ref: string, newTags: string[], access: RegistryAccess = {}): Promise<TagResult> {
  if (!newTags.length) throw usageError('name at least one new tag');
  for (const t of newTags) if (!TAG_RE.test(t)) throw usageError(`invalid tag "${t.slice(0, 140)}": must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  return withClient(
    ref,
    access,
    async (c, r) => {
      const m = await c.getManifest(refOf(r));
      const tagged: string[] = [];
      for (const t of newTags) {
        await c.putManifest(t, m.bytes, m.mediaType);
        tagged.push(`${r.name}:${t}`);
      }
      return { source: `${r.name}${r.digest ? '@' + r.digest : ':' + refOf(r)}`, digest: m.digest, mediaType: m.mediaType, tagged };
    },
    { push: true },
  );
}
