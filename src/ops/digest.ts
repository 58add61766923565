import { notFoundError } from '../errors.js';
import { parseManifest } from '../manifest/manifest.js';
import { selectPlatform, type WantedPlatform } from '../manifest/platform.js';
import { platformMatches, platformString } from '../manifest/platform-string.js';
import type { Platform } from '../manifest/manifest.js';
import type { RegistryAccess } from '../registry/access.js';
import { configPlatform, readConfig } from './image-platform.js';
import { refOf, withClient } from './registry-client.js';

export interface DigestResult {
  reference: string;
  digest: string;
  mediaType: string;
  platform?: Platform;
}

/**
 * The digest of the manifest a reference names (the index's, for a multi-platform image), or with `platform` the
 * digest of that platform's image: picked from the index like pull picks it, or checked against a single image's config.
 */
export async function manifestDigest(ref: string, access: RegistryAccess = {}, platform?: WantedPlatform): Promise<DigestResult> {
  return withClient(ref, access, async (c, r) => {
    const name = `${r.name}${r.digest ? '@' + r.digest : ':' + refOf(r)}`;
    if (!platform) {
      const head = await c.headManifest(refOf(r));
      if (!head) {
        const m = await c.getManifest(refOf(r)); // throws the registry's not-found line
        return { reference: name, digest: m.digest, mediaType: m.mediaType };
      }
      return { reference: name, digest: head.digest, mediaType: head.mediaType };
    }
    const m = await c.getManifest(refOf(r));
    const parsed = parseManifest(m.bytes, m.mediaType, `manifest ${name}`);
    if (parsed.kind === 'index') {
      const d = selectPlatform(parsed, platform);
      return { reference: name, digest: d.digest, mediaType: d.mediaType, ...(d.platform ? { platform: d.platform } : {}) };
    }
    const p = configPlatform(await readConfig(c, parsed.config), name);
    if (!platformMatches(p, platform)) throw notFoundError(`${name} is a single image for ${platformString(p)}, not ${platformString(platform)}`);
    return { reference: name, digest: m.digest, mediaType: m.mediaType, platform: p };
  });
}
