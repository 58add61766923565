import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { LayerCache } from '../../nix/layer-cache.js';
import { parseCredsFlag } from '../../registry/auth/credentials.js';
import { networkOptions, withNetworkFlags, type NetworkArgs } from '../network-flags.js';
import { platformOptions, wantedPlatform } from '../source-flags.js';

interface Args extends NetworkArgs {
  source: string;
  destination: string;
  all?: boolean;
  platform?: string;
  os?: string;
  arch?: string;
  variant?: string;
  srcTlsVerify: boolean;
  destTlsVerify: boolean;
  srcCreds?: string;
  destCreds?: string;
  authfile?: string;
  srcCertDir?: string;
  destCertDir?: string;
  storeRoot?: string;
  cache: boolean;
  tag?: string;
  jobs: number;
  force?: boolean;
  quiet?: boolean;
  referrers?: boolean;
}

/** `nixreg copy SRC DST`: skopeo copy's transports on both sides, one platform or (--all) a whole index. */
export const command: CommandModule<object, Args> = {
  command: 'copy <source> <destination>',
  describe: 'copy an image between registries, docker-archives, OCI layouts and archives (skopeo copy)',
  builder: (y) =>
    withNetworkFlags(y)
      .positional('source', {
        type: 'string',
        demandOption: true,
        describe: 'docker://REF, docker-archive:FILE[:NAME:TAG], oci:DIR[:REF], oci-archive:FILE[:REF], conf:FILE, or a path',
      })
      .positional('destination', {
        type: 'string',
        demandOption: true,
        describe: 'docker://REF, docker-archive:FILE[:NAME:TAG], oci:DIR[:TAG] or oci-archive:FILE[:TAG]',
      })
      .option('all', { type: 'boolean', describe: 'copy every platform of an index and the index itself (not into docker-archive:)' })
      .options(platformOptions)
      .option('src-tls-verify', { type: 'boolean', default: true, describe: 'docker:// source: verify TLS, https only (false allows http)' })
      .option('dest-tls-verify', { type: 'boolean', default: true, describe: 'docker:// destination: verify TLS, https only (false allows http)' })
      .option('src-creds', { type: 'string', describe: 'docker:// source: user:password (sent to the source registry only)' })
      .option('dest-creds', { type: 'string', describe: 'docker:// destination: user:password (sent to the destination registry only)' })
      .option('authfile', { type: 'string', describe: "auth.json to read each registry's credentials from" })
      .option('src-cert-dir', { type: 'string', describe: 'docker:// source: directory with *.crt CAs and client *.cert/*.key' })
      .option('dest-cert-dir', { type: 'string', describe: 'docker:// destination: directory with *.crt CAs and client *.cert/*.key' })
      .option('store-root', { type: 'string', describe: 'conf source: read /nix/store/... from DIR/nix/store/...' })
      .option('cache', { type: 'boolean', default: true, describe: 'conf source: cache layer digests (--no-cache disables)' })
      .option('tag', { alias: 't', type: 'string', describe: 'conf source: override repo_tag (NAME:TAG)' })
      .option('jobs', { type: 'number', default: 4, describe: 'layers copied in parallel' })
      .option('force', { type: 'boolean', describe: 'replace an existing output file (an existing OCI layout directory is added to)' })
      .option('referrers', {
        type: 'boolean',
        describe: 'docker:// to docker://: bring along the SBOMs, provenance and signatures attached to each copied manifest',
      })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const [{ copy }, { createProgress }, { createPushProgress }] = await Promise.all([
      import('../../ops/copy.js'),
      import('../progress.js'),
      import('../push-progress.js'),
    ]);
    if (!Number.isInteger(a.jobs) || a.jobs < 1) throw usageError('--jobs must be a positive integer');
    if (a.all && (a.platform !== undefined || a.os !== undefined || a.arch !== undefined || a.variant !== undefined))
      throw usageError('--all copies every platform; leave out --platform/--os/--arch/--variant');
    const network = networkOptions(a);
    const progress = createProgress({ quiet: a.quiet });
    const r = await copy({
      source: a.source,
      destination: a.destination,
      all: a.all,
      jobs: a.jobs,
      force: a.force,
      ...(a.referrers ? { referrers: true } : {}),
      sourceOptions: {
        platform: wantedPlatform(a),
        tlsVerify: a.srcTlsVerify,
        ...(a.srcCreds !== undefined ? { creds: parseCredsFlag(a.srcCreds) } : {}),
        ...(a.authfile ? { authfile: a.authfile } : {}),
        ...(a.srcCertDir ? { certDir: a.srcCertDir } : {}),
        ...network,
        ...(a.storeRoot ? { storeRoot: a.storeRoot } : {}),
        ...(a.cache ? { cache: new LayerCache() } : {}),
        ...(a.tag ? { repoTag: a.tag } : {}),
      },
      destinationAccess: {
        tlsVerify: a.destTlsVerify,
        ...(a.destCreds !== undefined ? { creds: parseCredsFlag(a.destCreds) } : {}),
        ...(a.authfile ? { authfile: a.authfile } : {}),
        ...(a.destCertDir ? { certDir: a.destCertDir } : {}),
        ...network,
      },
      progress,
      pushProgress: createPushProgress({ quiet: a.quiet }),
    });
    progress.done();
    for (const x of r.referrers ?? []) progress.info(`copied ${x.artifactType || 'artifact'} ${x.digest} referring to ${x.subject} (${x.via})`);
    progress.info(`copied ${a.source} to ${a.destination}: ${r.digest}`);
  },
};
