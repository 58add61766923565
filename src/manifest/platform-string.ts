import { usageError } from '../errors.js';
import type { Platform } from './manifest.js';
import type { WantedPlatform } from './platform.js';

/** `os/arch[/variant]` as docker, buildx, crane and regctl write a platform (`linux/arm64/v8`). */
export function parsePlatform(value: string, flag = '--platform'): WantedPlatform {
  const parts = value.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p)))
    throw usageError(`${flag} takes os/arch[/variant] like linux/amd64 or linux/arm64/v8, got "${value.slice(0, 60)}"`);
  const [os, arch, variant] = parts as [string, string, string?];
  return { os: os.toLowerCase(), arch: arch.toLowerCase(), ...(variant ? { variant: variant.toLowerCase() } : {}) };
}

export const platformString = (p: { os: string; arch?: string; architecture?: string; variant?: string }): string =>
  [p.os, p.arch ?? p.architecture, p.variant].filter(Boolean).join('/');

/** arm64 images without a variant are v8 (containerd's normalisation); every other variant must be equal. */
const normalVariant = (arch: string, variant: string | undefined): string => (arch === 'arm64' && !variant ? 'v8' : (variant ?? ''));

/** Whether an index entry's platform is exactly the wanted one (a wanted platform without a variant takes any). */
export function platformMatches(have: Platform | undefined, want: WantedPlatform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.arch) return false;
  return want.variant === undefined || normalVariant(have.architecture, have.variant) === normalVariant(want.arch, want.variant);
}

export { isAttestation } from './platform.js';
