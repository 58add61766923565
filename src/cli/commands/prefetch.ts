import type { Argv, CommandModule } from 'yargs';
import { execFileSync } from 'node:child_process';
import { usageError, NixregError, ExitCode } from '../../errors.js';
import { fixedOutputPath, pullImageName } from '../../nix/store-path.js';
import { parseImageReference } from '../../reference/reference.js';
import type { PrefetchFormat } from '../../prefetch/output.js';
import { wantedPlatform } from '../source-flags.js';
import { parseCredsFlag } from '../../registry/auth/credentials.js';
import { networkOptions, withNetworkFlags, type NetworkArgs } from '../network-flags.js';
import { makeTempDirSync } from '../../util/temp-dir.js';

interface Args extends NetworkArgs {
  positionals: string[];
  imageName?: string;
  imageTag?: string;
  imageDigest?: string;
  finalImageName?: string;
  finalImageTag?: string;
  os?: string;
  arch?: string;
  variant?: string;
  platform?: string;
  json?: boolean;
  format?: PrefetchFormat;
  quiet?: boolean;
  legacySha256?: boolean;
  indexDigest?: boolean;
  output?: string;
  force?: boolean;
  addToStore?: boolean;
  tlsVerify: boolean;
  creds?: string;
  authfile?: string;
  certDir?: string;
  jobs: number;
}

/**
 * What nix-prefetch-docker's arguments name: `IMAGE_NAME [IMAGE_TAG|IMAGE_DIGEST]` or --image-name/--image-tag/
 * --image-digest (the flags win), the name kept as written (`nginx` stays `nginx`, as pullImage's imageName) and
 * where it is fetched from, normalised like docker and skopeo (`nginx` → docker.io/library/nginx).
 */
export function prefetchTarget(
  pos: readonly string[],
  flags: { imageName?: string; imageTag?: string; imageDigest?: string },
): { imageName: string; imageTag?: string; imageDigest?: string; registry: string; repository: string } {
  if (pos.length > 2) throw usageError(`prefetch takes at most 2 positionals (IMAGE_NAME [IMAGE_TAG|IMAGE_DIGEST]), got ${pos.length}`);
  // nix-prefetch-docker prints the bare name; pullImage (skopeo) adds docker:// itself, so the prefix must not stay
  const imageName = (flags.imageName ?? pos[0])?.replace(/^docker:\/\//, '');
  if (!imageName) throw usageError('prefetch: no image name; give IMAGE_NAME or --image-name');
  let imageTag = flags.imageTag;
  let imageDigest = flags.imageDigest;
  // nix-prefetch-docker: the 2nd positional is a digest if it contains "sha256", otherwise a tag
  if (pos[1] !== undefined) {
    if (pos[1].includes('sha256')) imageDigest ??= pos[1];
    else imageTag ??= pos[1];
  }
  const ref = parseImageReference(imageName);
  return {
    imageName,
    ...(imageTag !== undefined ? { imageTag } : {}),
    ...(imageDigest !== undefined ? { imageDigest } : {}),
    registry: ref.registry,
    repository: ref.repository,
  };
}

/**
 * `nixreg prefetch`: a drop-in nix-prefetch-docker (same flags, positionals, defaults — arch amd64 —, stderr
 * lines and stdout layout), but it hashes the archive as a stream and pins the per-platform digest.
 */
export const command: CommandModule<object, Args> = {
  command: 'prefetch [positionals..]',
  describe: 'nix-prefetch-docker without skopeo: print the pullImage attributes (hash of the archive, per-platform digest)',
  builder: (y) =>
    withNetworkFlags(y)
      .positional('positionals', { type: 'string', array: true, describe: 'IMAGE_NAME [IMAGE_TAG|IMAGE_DIGEST]' })
      .option('image-name', { type: 'string' })
      .option('image-tag', { type: 'string' })
      .option('image-digest', { type: 'string' })
      .option('final-image-name', { type: 'string' })
      .option('final-image-tag', { type: 'string' })
      .option('os', { type: 'string', describe: 'default linux' })
      .option('arch', { type: 'string', describe: 'default amd64, like nix-prefetch-docker (not the host arch)' })
      .option('variant', { type: 'string' })
      .option('platform', { type: 'string', describe: 'os/arch[/variant] (like --os/--arch/--variant), or "all": one entry per platform of the index' })
      .option('json', { type: 'boolean', describe: 'output JSON instead of Nix' })
      .option('format', { choices: ['nix', 'json', 'nix-expr'] as const, describe: 'nix-expr: a ready-to-paste dockerTools.pullImage call' })
      .option('quiet', { type: 'boolean', describe: 'only print the final result' })
      .option('legacy-sha256', { type: 'boolean', describe: 'print sha256 = "<nix base32>" instead of hash = "sha256-..."' })
      .option('index-digest', { type: 'boolean', describe: 'pin the index digest (the old nix-prefetch-docker behaviour)' })
      .option('output', { alias: 'o', type: 'string', describe: 'also keep the archive in this file' })
      .option('force', { type: 'boolean' })
      .option('add-to-store', { type: 'boolean', describe: 'add the archive to the Nix store (nix-store --add-fixed), so pullImage is a cache hit' })
      .option('tls-verify', {
        type: 'boolean',
        default: true,
        describe:
          'TLS verification; false also allows plain http. A loopback registry (127.0.0.0/8, ::1, localhost) falls back to plain http when https fails even with true, as crane does',
      })
      .option('creds', { type: 'string', describe: 'user:password' })
      .option('authfile', { type: 'string' })
      .option('cert-dir', { type: 'string' })
      .option('jobs', { type: 'number', default: 4 }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const [{ prefetch }, { formatJson, formatMulti, formatNix, formatNixExpr }, { createProgress }] = await Promise.all([
      import('../../prefetch/prefetch.js'),
      import('../../prefetch/output.js'),
      import('../progress.js'),
    ]);
    const { imageName, imageTag, imageDigest } = prefetchTarget(a.positionals ?? [], a);
    const format: PrefetchFormat = a.format ?? (a.json ? 'json' : 'nix');
    const all = a.platform === 'all';
    if (a.platform !== undefined && !all && !a.platform.includes('/'))
      throw usageError(`--platform takes "all" or os/arch[/variant] like linux/arm64/v8, got "${a.platform.slice(0, 60)}"`);
    const platform = wantedPlatform({ ...a, ...(all ? { platform: undefined } : {}) }, { arch: 'amd64' });
    if (all && (a.output || a.addToStore)) throw usageError('--platform all cannot be combined with -o or --add-to-store');
    const progress = createProgress({ quiet: a.quiet });
    const output = a.output;
    let tempForStore: string | undefined;
    if (a.addToStore && !output) {
      tempForStore = makeTempDirSync('nixreg-prefetch-store-');
    }
    const runs = await prefetch({
      imageName,
      imageTag,
      imageDigest,
      finalImageName: a.finalImageName?.replace(/^docker:\/\//, ''),
      finalImageTag: a.finalImageTag,
      platform,
      allPlatforms: all,
      indexDigest: a.indexDigest,
      legacySha256: a.legacySha256,
      output: output ?? (tempForStore ? `${tempForStore}/${'image.tar'}` : undefined),
      force: a.force,
      jobs: a.jobs,
      client: {
        tlsVerify: a.tlsVerify,
        creds: a.creds !== undefined ? parseCredsFlag(a.creds) : undefined,
        authfile: a.authfile,
        certDir: a.certDir,
        ...networkOptions(a),
      },
      progress,
    });
    progress.done();
    for (const r of runs) {
      const name = pullImageName(r.finalImageName, r.finalImageTag);
      let imagePath = fixedOutputPath(r.sha256, name);
      if (a.addToStore) {
        const { renameSync, rmSync } = await import('node:fs');
        const { dirname, join } = await import('node:path');
        const file = output ?? `${tempForStore}/image.tar`;
        const named = join(dirname(file), name);
        if (!output) renameSync(file, named);
        try {
          imagePath = execFileSync('nix-store', ['--add-fixed', 'sha256', output ? file : named], { encoding: 'utf8' }).trim();
        } catch (err) {
          const e = err as { code?: string };
          throw new NixregError(
            e.code === 'ENOENT' ? '--add-to-store needs Nix: nix-store was not found on PATH' : `nix-store --add-fixed failed for ${named}`,
            ExitCode.failure,
          );
        } finally {
          if (tempForStore) rmSync(tempForStore, { recursive: true, force: true });
        }
      }
      if (!a.quiet) {
        if (r.resolvedIndexDigest && r.resolvedIndexDigest !== r.imageDigest)
          process.stderr.write(`-> IndexDigest: ${r.resolvedIndexDigest} (pinned ${r.os}/${r.arch}${r.variant ? '/' + r.variant : ''} instead)\n`);
        process.stderr.write(
          [
            `-> ImageName: ${r.imageName}`,
            `-> ImageDigest: ${r.imageDigest}`,
            `-> FinalImageName: ${r.finalImageName}`,
            `-> FinalImageTag: ${r.finalImageTag}`,
            `-> ImagePath: ${imagePath}`,
            `-> ImageHash: ${r.hash}`,
          ].join('\n') + '\n',
        );
      }
    }
    const out = all
      ? formatMulti(runs, format, a.legacySha256)
      : format === 'json'
        ? formatJson(runs[0]!, a.legacySha256)
        : format === 'nix-expr'
          ? formatNixExpr(runs[0]!, a.legacySha256)
          : formatNix(runs[0]!, a.legacySha256);
    process.stdout.write(out + '\n');
  },
};
