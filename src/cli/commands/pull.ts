import type { Argv, CommandModule } from 'yargs';
import { parseSha256, toNix32, toSRI } from '../../digest/nixhash.js';
import { usageError } from '../../errors.js';
import { platformOptions, wantedPlatform } from '../source-flags.js';
import { parseImageReference } from '../../reference/reference.js';
import { pullImageName } from '../../nix/store-path.js';
import { refuseTarOnTerminal } from '../terminal-guard.js';
import { parseCredsFlag } from '../../registry/auth/credentials.js';
import { networkOptions, withNetworkFlags, type NetworkArgs } from '../network-flags.js';

interface Args extends NetworkArgs {
  imageName: string;
  digest?: string;
  output?: string;
  os?: string;
  arch?: string;
  variant?: string;
  platform?: string;
  finalImageName?: string;
  finalImageTag?: string;
  sha256?: string;
  hash?: string;
  tlsVerify: boolean;
  creds?: string;
  authfile?: string;
  certDir?: string;
  jobs: number;
  quiet?: boolean;
  json?: boolean;
  force?: boolean;
  compress?: string;
}

/** `nixreg pull`: dockerTools.pullImage without skopeo — the same docker-archive bytes, the same flat hash. */
export const command: CommandModule<object, Args> = {
  command: 'pull <imageName>',
  describe: 'download an image into a docker-archive tarball identical to dockerTools.pullImage (skopeo) output',
  builder: (y) =>
    withNetworkFlags(y)
      .positional('imageName', { type: 'string', demandOption: true, describe: 'e.g. nixos/nix, quay.io/o/r, nginx:1.27' })
      .option('digest', { type: 'string', describe: 'imageDigest: sha256 of the manifest or index (omit to resolve the tag)' })
      .option('output', { alias: 'o', type: 'string', describe: "output file, or - for stdout (default: pullImage's name, docker-image-NAME-TAG.tar)" })
      .options(platformOptions)
      .option('final-image-name', { type: 'string', describe: 'name written into the archive (default: imageName)' })
      .option('final-image-tag', { type: 'string', describe: "tag written into the archive (default: the reference's tag, else latest)" })
      .option('sha256', { type: 'string', describe: 'expected flat sha256 of the archive (any Nix form)' })
      .option('hash', { type: 'string', describe: 'expected hash in SRI form (sha256-...)' })
      .option('tls-verify', {
        type: 'boolean',
        default: true,
        describe:
          'TLS verification; false also allows plain http. A loopback registry (127.0.0.0/8, ::1, localhost) falls back to plain http when https fails even with true, as crane does',
      })
      .option('creds', { type: 'string', describe: 'user:password' })
      .option('authfile', { type: 'string' })
      .option('cert-dir', { type: 'string' })
      .option('jobs', { type: 'number', default: 4, describe: 'layers fetched in parallel' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' })
      .option('json', { type: 'boolean', describe: 'print a JSON summary on stdout' })
      .option('force', { type: 'boolean', describe: 'overwrite an existing output file' })
      .option('compress', {
        type: 'string',
        describe: 'compress the archive: none (default), gz or zstd (deterministic); --sha256/--hash still pin the uncompressed archive',
      }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const [{ parseArchiveCompression }, { pullImage }, { createProgress, formatBytes }] = await Promise.all([
      import('../../compression/archive.js'),
      import('../../image/pull.js'),
      import('../progress.js'),
    ]);
    if (a.sha256 && a.hash) throw usageError('give either --sha256 or --hash, not both');
    if (a.output === '-') refuseTarOnTerminal(a.output, 'pull');
    if (a.json && a.output === '-') throw usageError('--json prints to stdout, so it cannot be combined with -o -');
    if (!Number.isInteger(a.jobs) || a.jobs < 1) throw usageError('--jobs must be a positive integer');
    const compress = parseArchiveCompression(a.compress);
    const network = networkOptions(a);
    const creds = a.creds !== undefined ? parseCredsFlag(a.creds) : undefined;
    const expected = a.sha256 ?? a.hash;
    const platform = wantedPlatform(a);
    // like prefetch: the reference's tag is the default final tag, and the default file is pullImage's name
    const refTag = parseImageReference(a.imageName).tag;
    const finalImageTag = a.finalImageTag ?? refTag ?? 'latest';
    const givenName = a.imageName.replace(/^docker:\/\//, '').replace(/@.*$/, '');
    const output = a.output ?? pullImageName(a.finalImageName ?? (refTag ? givenName.slice(0, -refTag.length - 1) : givenName), finalImageTag);
    const progress = createProgress({ quiet: a.quiet });
    const r = await pullImage({
      imageName: a.imageName,
      digest: a.digest,
      output,
      platform,
      finalImageName: a.finalImageName,
      finalImageTag,
      expectedSha256: expected !== undefined ? parseSha256(expected) : undefined,
      force: a.force,
      compress,
      // the hash is printed (or checked, or in --json); --quiet alone never shows it
      hashArchive: !a.quiet || !!a.json,
      jobs: a.jobs,
      tlsVerify: a.tlsVerify,
      creds,
      authfile: a.authfile,
      certDir: a.certDir,
      ...network,
      progress,
      onResolved: (s) => {
        if (!a.digest && !a.imageName.includes('@'))
          progress.info(
            `resolved ${a.imageName} to ${s.indexDigest ?? s.manifestDigest}; pin it with --digest ${s.manifestDigest}${s.indexDigest ? " (this platform's manifest, as pullImage's imageDigest)" : ''}`,
          );
        if (s.indexDigest) progress.info(`selected ${s.manifestDigest} for ${[platform.os, platform.arch, platform.variant].filter(Boolean).join('/')}`);
      },
    });
    progress.done();
    if (a.json) {
      process.stdout.write(
        JSON.stringify({
          imageName: r.imageName,
          indexDigest: r.indexDigest,
          manifestDigest: r.manifestDigest,
          output: r.output,
          size: r.size,
          hash: toSRI(r.sha256!),
          sha256: toNix32(r.sha256!),
        }) + '\n',
      );
    } else progress.info(`wrote ${a.output === '-' ? 'stdout' : a.output}: ${formatBytes(r.size)}${r.sha256 ? `, ${toSRI(r.sha256)}` : ''}`);
  },
};
