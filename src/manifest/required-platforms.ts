import { notFoundError } from '../errors.js';
import type { Descriptor } from './manifest.js';
import type { WantedPlatform } from './platform.js';
import { platformMatches, platformString, isAttestation } from './platform-string.js';

/**
 * Refuse an index that lacks a required platform (naming it and what the index has) before it is tagged: an
 * index stitched from per-runner pushes otherwise ships without a platform whose runner failed.
 */
export function checkRequiredPlatforms(manifests: Descriptor[], required: WantedPlatform[], indexName: string): void {
  const images = manifests.filter((d) => d.platform && !isAttestation(d));
  for (const want of required) {
    if (images.some((d) => platformMatches(d.platform, want))) continue;
    const have = images.map((d) => platformString(d.platform!)).join(', ') || 'none';
    throw notFoundError(`index ${indexName} would lack the required platform ${platformString(want)} (it has ${have}); nothing was tagged`);
  }
}
