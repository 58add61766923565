import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import type { PushCompression } from '../../compression/compress.js';
import type { PushResult } from '../../sink/registry/push-conf.js';
import type { PlatformsResult } from '../../sink/registry/push-platforms.js';
import type { PushFormatChoice } from '../../sink/registry/image-manifest.js';
import { buildImageFlagsOnePerFlag, buildOptionsFromArgs, givenBuildFlags, type BuildImageArgs } from '../build-flags.js';
import { networkOptions, parseSize, withNetworkFlags, type NetworkArgs } from '../network-flags.js';
import { attachFromPushArgs, checkSupplyChainSource, supplyChainFlags } from '../supply-chain-flags.js';

interface Args extends NetworkArgs, BuildImageArgs {
  source: string;
  destination?: string;
  platformConf?: string[];
  requirePlatform?: string[];
  platform?: string;
  additionalTag?: string[];
  storeRoot?: string;
  format?: PushFormatChoice;
  compression?: PushCompression;
  compressionLevel?: number;
  jobs: number;
  mountFrom?: string[];
  cacheFrom?: string[];
  registryCache: boolean;
  precomputeDigests?: boolean;
  chunkSize?: string;
  tlsVerify: boolean;
  srcTlsVerify?: boolean;
  creds?: string;
  srcCreds?: string;
  authfile?: string;
  certDir?: string;
  digestfile?: string;
  output?: string;
  tag?: string;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

/** `nixreg push`: generated layers straight into a registry (or a registry-to-registry copy). */
export const command: CommandModule<object, Args> = {
  // with --path (like --platform-conf) the only positional is the destination
  command: 'push <source> [destination]',
  describe:
    'push a streamLayeredImage conf (conf.json), store paths (--path, as nixreg build), an image archive or a docker:// image to docker://REGISTRY/REPO:TAG, skipping layers the registry has',
  builder: (y) =>
    withNetworkFlags(y)
      .option('retry-max-time', {
        type: 'string',
        describe: 'cap on the time spent retrying, e.g. 2m: per request (default 5m), and one budget for all uploads of the push together',
      })
      .positional('source', {
        type: 'string',
        demandOption: true,
        describe: 'conf.json of streamLayeredImage, a docker-archive (.tar/.tar.gz), oci:DIR[:REF], oci-archive:FILE[:REF], or docker://REGISTRY/REPO:TAG',
      })
      .positional('destination', { type: 'string', describe: 'docker://REGISTRY/REPO[:TAG] (with --platform-conf or --path: the only argument)' })
      .options(buildImageFlagsOnePerFlag())
      .options(supplyChainFlags)
      .check(checkSupplyChainSource)
      .option('platform-conf', { type: 'string', array: true, nargs: 1, describe: 'OS/ARCH[/VARIANT]=conf.json: push each and an index over them' })
      .option('require-platform', {
        type: 'string',
        array: true,
        nargs: 1,
        describe: 'with --platform-conf: os/arch[/variant] the index must hold, or nothing is pushed (repeatable)',
      })
      .option('platform', { type: 'string', describe: 'OCI layout/archive source holding an index: os/arch[/variant] to push (default linux and the host)' })
      .option('additional-tag', { type: 'string', array: true, nargs: 1, describe: 'more tags for the same manifest' })
      .option('store-root', { type: 'string', describe: 'read /nix/store/... from DIR/nix/store/...' })
      .option('format', {
        choices: ['docker', 'oci', 'auto'] as const,
        describe: 'manifest and media types (default docker; auto: OCI where the registry refuses Docker types; an OCI layout/archive source keeps its own)',
      })
      .option('compression', {
        choices: ['gzip', 'zstd', 'none'] as const,
        describe: 'layer compression, deterministic (default gzip; an OCI layout/archive source keeps its own)',
      })
      .option('compression-level', { type: 'number', describe: 'gzip 1-9 (default 1, BestSpeed like crane), zstd 1-19 (default 3)' })
      .option('jobs', { alias: 'j', type: 'number', default: 4, describe: 'layers uploaded in parallel' })
      .option('precompute-digests', {
        type: 'boolean',
        describe: 'layers not in the push cache: compress once to learn the digest, upload only if the registry lacks it (fresh CI runners)',
      })
      .option('chunk-size', {
        type: 'string',
        describe: "upload layers in chunks of SIZE bytes (k/M/G suffixes; at least the registry's OCI-Chunk-Min-Length) instead of one streamed PATCH",
      })
      .option('cache-from', {
        type: 'string',
        array: true,
        nargs: 1,
        describe: 'image on the destination registry (docker://REGISTRY/REPO:TAG) whose layers are reused by diffID when the push cache does not know them',
      })
      .option('registry-cache', {
        type: 'boolean',
        default: true,
        describe: 'reuse the blobs of the image the destination tags point to (--no-registry-cache: do not read it)',
      })
      .option('mount-from', { type: 'string', array: true, nargs: 1, describe: 'repository on the destination registry to mount known blobs from' })
      .option('tls-verify', {
        type: 'boolean',
        default: true,
        describe:
          'destination (and source) TLS verification; false also allows plain http. A loopback registry (127.0.0.0/8, ::1, localhost) falls back to plain http when https fails even with true, as crane does',
      })
      .option('src-tls-verify', { type: 'boolean', describe: 'source registry TLS verification (default: --tls-verify)' })
      .option('creds', { type: 'string', describe: 'destination user:password' })
      .option('src-creds', { type: 'string', describe: 'source registry user:password' })
      .option('authfile', { type: 'string' })
      .option('cert-dir', { type: 'string' })
      .option('output', { alias: 'o', type: 'string', describe: 'also write the docker-archive (nixreg stream bytes) to FILE, generating each layer once' })
      .option('tag', { alias: 't', type: 'string', describe: 'NAME:TAG written into the --output archive (default: conf repo_tag)' })
      .option('force', { type: 'boolean', describe: 'overwrite an existing --output file' })
      .option('digestfile', { type: 'string', describe: 'write the manifest digest to FILE' })
      .option('json', { type: 'boolean', describe: 'print a JSON summary on stdout' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors and the digest' })
      .option('debug', { type: 'boolean', describe: 'log registry requests on stderr (never secrets)' }) as unknown as Argv<Args>,
  handler: async (a) => {
    if (!Number.isInteger(a.jobs) || a.jobs < 1) throw usageError('--jobs must be a positive integer');
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const [
      { parseCredsFlag },
      { pushConf },
      { pushSource },
      { wantedPlatform },
      { checkRequiredPlatforms },
      { parsePlatform },
      { isConfFile },
      { copyRegistryImage },
      { createPushProgress },
      { writeDigestFile },
      { parsePlatformConf, pushPlatforms },
      { pushBuild },
      { parseDockerDestination },
    ] = await Promise.all([
      import('../../registry/auth/credentials.js'),
      import('../../sink/registry/push-conf.js'),
      import('../../sink/registry/source-push.js'),
      import('../source-flags.js'),
      import('../../manifest/required-platforms.js'),
      import('../../manifest/platform-string.js'),
      import('../../sink/registry/archive-source.js'),
      import('../../sink/registry/registry-copy.js'),
      import('../push-progress.js'),
      import('../../sink/registry/digest-file.js'),
      import('../../sink/registry/push-platforms.js'),
      import('../../sink/registry/push-build.js'),
      import('../../sink/registry/destination.js'),
    ]);
    const log = a.debug ? (line: string) => process.stderr.write(`debug: ${line}\n`) : undefined;
    const access = {
      tlsVerify: a.tlsVerify,
      ...(a.creds !== undefined ? { creds: parseCredsFlag(a.creds) } : {}),
      ...(a.authfile ? { authfile: a.authfile } : {}),
      ...(a.certDir ? { certDir: a.certDir } : {}),
      ...networkOptions(a),
      ...(log ? { log } : {}),
    };
    // upload options every generated-layer push (conf, archive, --platform-conf) shares
    const upload = {
      additionalTags: a.additionalTag ?? [],
      format: a.format,
      compression: a.compression,
      ...(a.compressionLevel !== undefined ? { compressionLevel: a.compressionLevel } : {}),
      jobs: a.jobs,
      mountFrom: a.mountFrom ?? [],
      cacheFrom: a.cacheFrom ?? [],
      registryCache: a.registryCache,
      ...(a.precomputeDigests ? { precomputeDigests: true } : {}),
      ...(a.chunkSize !== undefined ? { chunkSize: parseChunkSize(a.chunkSize) } : {}),
      progress: createPushProgress({ quiet: a.quiet }),
    };
    if (a.requirePlatform?.length && !a.platformConf?.length)
      throw usageError('--require-platform applies to --platform-conf (for an index built elsewhere: nixreg index create --require-platform)');
    if (a.platform !== undefined && (a.path?.length || a.platformConf?.length))
      throw usageError('--platform picks from an OCI layout/archive source; --path and --platform-conf build their own platforms');
    let result: PushResult | PlatformsResult;
    const buildFlags = givenBuildFlags(a);
    if (a.path?.length) {
      if (a.destination !== undefined)
        throw usageError('with --path, give only the destination: nixreg push --path /nix/store/...-app docker://REGISTRY/REPO:TAG');
      if (a.platformConf?.length) throw usageError('--path and --platform-conf cannot be combined');
      if (a.output === '-') throw usageError('--output - is not supported by push (stdout carries the digest); use nixreg build');
      const ref = parseDockerDestination(a.source);
      // the archive name (--output RepoTags) defaults to the destination's repository and tag; it is not in the config
      const name = a.name ?? `${ref.repository}:${ref.tag ?? 'latest'}`;
      result = await pushBuild({
        ...access,
        ...upload,
        destination: a.source,
        build: await buildOptionsFromArgs(a, name, a.storeRoot),
        ...(a['write-conf'] ? { writeConf: a['write-conf'] } : {}),
        ...(a.output ? { output: a.output } : {}),
        ...(a.tag ? { repoTag: a.tag } : {}),
        ...(a.force ? { force: true } : {}),
      });
    } else if (buildFlags.length) {
      throw usageError(`--${buildFlags[0]} builds an image from store paths: it needs --path`);
    } else if (a.platformConf?.length) {
      if (a.destination !== undefined) throw usageError('with --platform-conf, give only the destination (the confs come from --platform-conf)');
      if (a.output || a.tag) throw usageError('--output and -t do not apply to --platform-conf');
      const confs = a.platformConf.map(parsePlatformConf);
      checkRequiredPlatforms(
        confs.map((c) => ({ mediaType: '', digest: '', size: 0, platform: c.platform })),
        (a.requirePlatform ?? []).map((p) => parsePlatform(String(p), '--require-platform')),
        a.source.replace(/^docker:\/\//, ''),
      );
      result = await pushPlatforms(
        {
          ...access,
          ...upload,
          destination: a.source,
          ...(a.storeRoot ? { storeRoot: a.storeRoot } : {}),
        },
        confs,
      );
    } else if (a.destination === undefined) {
      throw usageError('give a source and a destination: nixreg push conf.json docker://REGISTRY/REPO:TAG');
    } else if (a.source.startsWith('docker://')) {
      if (a.output || a.storeRoot || a.tag) throw usageError('--output, --store-root and -t apply to a conf.json source, not docker://');
      if (a.platform !== undefined) throw usageError('--platform picks from an OCI layout/archive source; a docker:// copy keeps every platform');
      result = await copyRegistryImage({
        ...access,
        source: a.source,
        destination: a.destination,
        additionalTags: a.additionalTag ?? [],
        jobs: a.jobs,
        srcTlsVerify: a.srcTlsVerify ?? a.tlsVerify,
        mountFrom: a.mountFrom ?? [],
        ...(a.srcCreds !== undefined ? { srcCreds: parseCredsFlag(a.srcCreds) } : {}),
        progress: upload.progress,
      });
    } else if (/^(docker-archive|oci|oci-archive):/.test(a.source) || !(await isConfFile(a.source))) {
      // docker-archive (plain/gzip/zstd), OCI layout or OCI archive: read through openSource
      if (a.output || a.storeRoot || a.tag) throw usageError('--output, --store-root and -t apply to a conf.json source, not an image archive');
      if (a.sbom || a.provenance)
        throw usageError(`--sbom and --provenance need a conf.json or --path source (the store paths the image holds), not ${a.source}`);
      const { format: _f, compression: _c, ...rest } = upload;
      result = await pushSource({
        ...access,
        ...rest,
        // unset = keep the source's own format/compression (and with them its manifest digest) where it has a manifest
        ...(a.format ? { format: a.format } : {}),
        ...(a.compression ? { compression: a.compression } : {}),
        source: a.source,
        sourceOptions: { platform: wantedPlatform({ platform: a.platform }), ...access },
        destination: a.destination,
      });
    } else {
      if (a.srcCreds !== undefined || a.srcTlsVerify !== undefined) throw usageError('--src-creds and --src-tls-verify only apply to a docker:// source');
      if (a.platform !== undefined)
        throw usageError('--platform picks from an OCI layout/archive source; a conf.json builds one platform (for several: --platform-conf)');
      if (a.output === '-') throw usageError('--output - is not supported by push (stdout carries the digest); use nixreg stream');
      result = await pushConf({
        ...access,
        ...upload,
        confFile: a.source.replace(/^conf:/, ''),
        destination: a.destination,
        ...(a.storeRoot ? { storeRoot: a.storeRoot } : {}),
        ...(a.output ? { output: a.output } : {}),
        ...(a.tag ? { repoTag: a.tag } : {}),
        ...(a.force ? { force: true } : {}),
      });
    }
    const attached = await attachFromPushArgs(a, access, result); // --sbom / --provenance: documents referring to the pushed manifest
    if (a.digestfile) await writeDigestFile(a.digestfile, result.digest);
    const reference = `${result.name}@${result.digest}`;
    if (a.json) process.stdout.write(JSON.stringify({ ...result, reference, ...(attached.length ? { attached } : {}) }) + '\n');
    else process.stdout.write(`${result.digest}\n${reference}\n`);
  },
};

/** `--chunk-size 8M`: bytes, with an optional k/M/G (binary) suffix. */
export function parseChunkSize(v: string): number {
  return parseSize(v, '--chunk-size');
}
