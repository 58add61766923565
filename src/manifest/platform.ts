import { arch as nodeArch } from 'node:process';
import { notFoundError } from '../errors.js';
import type { Descriptor, ImageIndex } from './manifest.js';

export interface WantedPlatform {
  os: string;
  arch: string;
  variant?: string;
}

/** Node's process.arch → Go's GOARCH, which is what registries and nixpkgs (`go.GOARCH`) use. */
const NODE_TO_GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le', // Node reports ppc64 on little-endian ppc64le Linux hosts
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

export function goArch(nodeArchName: string = nodeArch): string {
  return NODE_TO_GOARCH[nodeArchName] ?? nodeArchName;
}

/** The host platform as registries name it; the variant is only known for 32-bit arm (from the ABI Node was built for). */
export function hostPlatform(): WantedPlatform {
  const arch = goArch();
  const p: WantedPlatform = { os: 'linux', arch };
  if (arch === 'arm') {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    if (v) p.variant = `v${v}`;
  }
  return p;
}

// c/image internal/pkg/platform: compatibility lists, newest first.
const COMPATIBLE_VARIANTS: Record<string, string[]> = {
  arm: ['v8', 'v7', 'v6', 'v5'],
  arm64: ['v8'],
};

/** c/image's candidate variant order (containers/image internal/pkg/platform/platform_matcher.go). */
export function variantCandidates(arch: string, variant?: string): string[] {
  const compat = COMPATIBLE_VARIANTS[arch] ?? [];
  if (variant) {
    const i = compat.indexOf(variant);
    const older = i === -1 ? [variant] : compat.slice(i);
    return [...older, ''];
  }
  return ['', ...compat];
}

const describe = (d: Descriptor): string =>
  d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : '(no platform)';

/** Index entries that are not images for a platform: buildx attestations (platform unknown/unknown). */
export const isAttestation = (d: Descriptor): boolean =>
  d.platform?.os === 'unknown' || d.platform?.architecture === 'unknown' || d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';

/**
 * Choose the manifest for a platform from a Docker manifest list / OCI index, exactly in c/image's order:
 * for each candidate variant, the first entry with equal os, architecture and variant; entries without a
 * platform are a fallback; attestation entries never match. No match → notFound error listing what exists.
 */
export function selectPlatform(index: ImageIndex, wanted: WantedPlatform): Descriptor {
  const entries = index.manifests.filter((d) => !isAttestation(d));
  for (const v of variantCandidates(wanted.arch, wanted.variant)) {
    const hit = entries.find((d) => d.platform && d.platform.os === wanted.os && d.platform.architecture === wanted.arch && (d.platform.variant ?? '') === v);
    if (hit) return hit;
  }
  const noPlatform = entries.find((d) => !d.platform);
  if (noPlatform) return noPlatform;
  const want = [wanted.os, wanted.arch, wanted.variant].filter(Boolean).join('/');
  const have = [...new Set(entries.filter((d) => d.platform).map(describe))].join(', ') || 'none';
  throw notFoundError(`no image for platform ${want} in the index; available: ${have} (use --platform os/arch[/variant])`);
}
