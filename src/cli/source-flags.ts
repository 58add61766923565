import type { Argv } from 'yargs';
import { hostPlatform, type WantedPlatform } from '../manifest/platform.js';
import { parsePlatform, platformString } from '../manifest/platform-string.js';
import { usageError } from '../errors.js';
import { LayerCache } from '../nix/layer-cache.js';
import { parseCredsFlag } from '../registry/auth/credentials.js';
import { networkOptions, withNetworkFlags, type NetworkArgs } from './network-flags.js';
import type { OpenSourceOptions } from '../source/index.js';

/**
 * The flags every command reading a source takes (inspect, merge, export, push of an archive...): platform
 * choice for an index, the registry client's flags (as pull has them), and the conf flags (as stream has them).
 * Defined once so the commands cannot drift.
 */
export interface SourceArgs extends NetworkArgs {
  os?: string;
  arch?: string;
  platform?: string;
  variant?: string;
  tlsVerify: boolean;
  creds?: string;
  authfile?: string;
  certDir?: string;
  storeRoot?: string;
  cache: boolean;
}

/** The platform to pick from an index (`wantedPlatform` reads them): one definition for every command. */
export const platformOptions = {
  platform: { type: 'string', describe: 'os/arch[/variant] to pick from an index, e.g. linux/arm64/v8 (default: linux and the host)' },
  os: { type: 'string', describe: 'OS to pick from an index (default linux)' },
  arch: { type: 'string', describe: 'GOARCH to pick from an index (default: the host)' },
  variant: { type: 'string', describe: 'e.g. v8, v7' },
} as const;

export function withSourceFlags<T>(y: Argv<T>): Argv<T & SourceArgs> {
  return withNetworkFlags(y)
    .options(platformOptions)
    .option('tls-verify', { type: 'boolean', default: true, describe: 'docker://: verify TLS, https only (--tls-verify=false allows http)' })
    .option('creds', { type: 'string', describe: 'docker://: user:password' })
    .option('authfile', { type: 'string', describe: 'docker://: auth.json to read credentials from' })
    .option('cert-dir', { type: 'string', describe: 'docker://: directory with *.crt CAs and client *.cert/*.key' })
    .option('store-root', { type: 'string', describe: 'conf: read /nix/store/... from DIR/nix/store/...' })
    .option('cache', { type: 'boolean', default: true, describe: 'conf: cache layer digests (--no-cache disables)' }) as unknown as Argv<T & SourceArgs>;
}

/** A command reading one image: `<source>` in every form openSource takes, `-t` for a conf, and the source flags. */
export function withOneSource<T>(y: Argv<T>): Argv<T & SourceArgs & { source: string; tag?: string }> {
  return withSourceFlags(y)
    .positional('source', {
      type: 'string',
      demandOption: true,
      describe: 'docker://REF, docker-archive:PATH[:NAME:TAG], oci:DIR[:REF], oci-archive:PATH[:REF], conf:PATH, or a path',
    })
    .option('tag', { alias: 't', type: 'string', describe: 'conf: override repo_tag (NAME:TAG)' }) as unknown as Argv<
    T & SourceArgs & { source: string; tag?: string }
  >;
}

/**
 * The platform to pick from an index: `--platform os/arch[/variant]` or the older --os/--arch/--variant (both
 * may be given when they agree). Like `nixreg pull` and c/image, the host's variant is only assumed when the
 * architecture is not given.
 */
export function wantedPlatform(a: PlatformArgs, defaults: { os?: string; arch?: string } = {}): WantedPlatform {
  if (a.platform !== undefined) {
    const p = parsePlatform(String(a.platform));
    const given: Array<[string, string | undefined, string | undefined]> = [
      ['os', a.os, p.os],
      ['arch', a.arch, p.arch],
      ['variant', a.variant, p.variant],
    ];
    for (const [flag, value, fromPlatform] of given)
      if (value !== undefined && value.toLowerCase() !== fromPlatform)
        throw usageError(`--platform ${platformString(p)} and --${flag} ${value} disagree; give one of them`);
    return p;
  }
  const host = hostPlatform();
  return {
    os: a.os ?? defaults.os ?? 'linux',
    arch: a.arch ?? defaults.arch ?? host.arch,
    ...(a.variant ? { variant: a.variant } : !a.arch && !defaults.arch && host.variant ? { variant: host.variant } : {}),
  };
}

/** The flags wantedPlatform reads. */
export interface PlatformArgs {
  platform?: string;
  os?: string;
  arch?: string;
  variant?: string;
}

export function sourceOptions(a: SourceArgs & { tag?: string }): OpenSourceOptions {
  return {
    platform: wantedPlatform(a),
    tlsVerify: a.tlsVerify,
    ...(a.creds !== undefined ? { creds: parseCredsFlag(a.creds) } : {}),
    ...(a.authfile ? { authfile: a.authfile } : {}),
    ...(a.certDir ? { certDir: a.certDir } : {}),
    ...networkOptions(a),
    ...(a.storeRoot ? { storeRoot: a.storeRoot } : {}),
    ...(a.cache ? { cache: new LayerCache() } : {}),
    ...(a.tag ? { repoTag: a.tag } : {}),
  };
}
