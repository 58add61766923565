import type { Options } from 'yargs';
import type { attachSupplyChain, AttachedArtifact } from '../ops/referrers.js';
import { SBOM_FORMATS, type SbomFormat } from '../sbom/model.js';
import type { RegistryAccess } from '../registry/access.js';
import { usageError } from '../errors.js';
import { buildOptionsFromArgs, type BuildImageArgs } from './build-flags.js';
import { ownVersion } from './own-version.js';

/** `push --sbom FORMAT --provenance`: documents about the pushed image, attached to it as OCI referrers. */
export const supplyChainFlags = {
  sbom: {
    choices: SBOM_FORMATS,
    describe: 'also push an SBOM of the image (every store path with its layer) as an OCI artifact referring to it',
    conflicts: 'platform-conf',
  },
  provenance: {
    type: 'boolean',
    describe: 'also push an in-toto SLSA provenance v1 statement (conf or store paths, nixreg version) referring to the image',
    conflicts: 'platform-conf',
  },
} satisfies Record<string, Options>;

/** Before any upload: a source that names no store paths cannot have an SBOM (an archive file is found out later). */
export function checkSupplyChainSource(a: { sbom?: unknown; provenance?: unknown; source?: unknown; path?: unknown[] }): true {
  if ((a.sbom || a.provenance) && !a.path?.length && /^(docker|docker-archive|oci|oci-archive):/.test(String(a.source)))
    throw usageError(`--sbom and --provenance need a conf.json or --path source (the store paths the image holds), not ${String(a.source)}`);
  return true;
}

interface PushArgs extends BuildImageArgs {
  source: string;
  sbom?: SbomFormat;
  provenance?: boolean;
  storeRoot?: string;
  tag?: string;
  quiet?: boolean;
}

interface Pushed {
  name: string;
  digest: string;
  mediaType: string;
  layers?: Array<{ diffID: string; digest: string }>;
}

/** The hook push calls once its manifest is in the registry; prints one line per attached document on stderr. */
export async function attachFromPushArgs(a: PushArgs, access: RegistryAccess, result: Pushed): Promise<AttachedArtifact[]> {
  if (!a.sbom && !a.provenance) return [];
  // loaded only when asked for: a push without --sbom/--provenance never reads them
  const [{ attachSupplyChain }, { parseDockerDestination }, { isConfFile }] = await Promise.all([
    import('../ops/referrers.js'),
    import('../sink/registry/destination.js'),
    import('../sink/registry/archive-source.js'),
  ]);
  let source: Parameters<typeof attachSupplyChain>[0]['source'];
  if (a.path?.length) {
    const ref = parseDockerDestination(a.source);
    source = { build: await buildOptionsFromArgs(a, a.name ?? `${ref.repository}:${ref.tag ?? 'latest'}`, a.storeRoot), toolVersion: ownVersion() };
  } else {
    if (/^(docker|docker-archive|oci|oci-archive):/.test(a.source) || !(await isConfFile(a.source.replace(/^conf:/, ''))))
      throw usageError(
        `pushed ${result.name}@${result.digest}, but --sbom and --provenance need a conf.json or --path source (the store paths the image holds), not ${a.source}`,
      );
    source = { confFile: a.source.replace(/^conf:/, ''), toolVersion: ownVersion(), ...(a.tag ? { repoTag: a.tag } : {}) };
  }
  if (a.storeRoot) source.storeRoot = a.storeRoot;
  if (process.env.SOURCE_DATE_EPOCH !== undefined) source.sourceDateEpoch = process.env.SOURCE_DATE_EPOCH;
  const attached = await attachSupplyChain({
    ...access,
    name: result.name,
    digest: result.digest,
    mediaType: result.mediaType,
    ...(result.layers ? { layers: result.layers } : {}),
    ...(a.sbom ? { sbom: a.sbom } : {}),
    ...(a.provenance ? { provenance: true } : {}),
    source,
  });
  if (!a.quiet) for (const x of attached) process.stderr.write(`attached ${x.artifactType} ${x.digest} (${x.via})\n`);
  return attached;
}
