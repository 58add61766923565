import { mergeQuirks, type Quirks } from './quirks.js';
import { acr } from './quirks-acr.js';
import { dockerhub } from './quirks-dockerhub.js';
import { ecr } from './quirks-ecr.js';
import { gar } from './quirks-gar.js';
import { ghcr } from './quirks-ghcr.js';
import { gitlab } from './quirks-gitlab.js';
import { harbor } from './quirks-harbor.js';
import { quay } from './quirks-quay.js';
import { zot } from './quirks-zot.js';

/** The named quirk profiles (`--quirks NAME[,NAME...]`); each file cites the registry's public sources. */
export const QUIRK_PROFILES: Record<string, Quirks> = { acr, dockerhub, ecr, gar, ghcr, gitlab, harbor, quay, zot };

/** Resolve "ghcr,zot" (or a list) into one merged set; unknown names are an error naming the known ones. */
export function resolveQuirks(names: string | string[] | undefined): Quirks | undefined {
  const list = (Array.isArray(names) ? names : (names ?? '').split(',')).map((n) => n.trim()).filter(Boolean);
  if (!list.length) return undefined;
  for (const n of list) if (!Object.hasOwn(QUIRK_PROFILES, n)) throw new Error(`unknown quirk profile "${n}" (${Object.keys(QUIRK_PROFILES).join(', ')})`);
  return mergeQuirks(list.map((n) => QUIRK_PROFILES[n]!));
}
