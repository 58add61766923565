import { NixregError, usageError } from '../errors.js';
import { DIGEST_RE } from '../digest/sha256.js';
import type { RegistryAccess } from '../registry/access.js';
import { attachArtifact, listReferrers, type OciDescriptor, type ReferrersVia } from '../sink/registry/referrers.js';
import { IN_TOTO_MEDIA_TYPE, SLSA_PROVENANCE_V1, provenanceStatement } from '../sbom/provenance.js';
import { renderSbom, sbomInput, SBOM_MEDIA_TYPES, type SbomFormat, type SbomSourceOptions } from './sbom.js';
import { refOf, withClient } from './registry-client.js';
import { signatureTag } from './sign.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from '../sbom/simple-signing.js';

export interface SupplyChainOptions extends RegistryAccess {
  /** the pushed image: `REGISTRY/REPOSITORY` (a push result's `name`), its manifest digest and media type */
  name: string;
  digest: string;
  mediaType: string;
  /** the push's layers in manifest order (diffID and blob digest) */
  layers?: Array<{ diffID: string; digest?: string }>;
  sbom?: SbomFormat;
  provenance?: boolean;
  /** what the image was made from: a conf file or `nixreg build` options */
  source: Omit<SbomSourceOptions, 'layers' | 'imageDigest' | 'log'>;
}

export interface AttachedArtifact {
  artifactType: string;
  digest: string;
  via: ReferrersVia;
}

/**
 * After a push: the SBOM and/or the SLSA provenance statement of the image, each pushed as an OCI artifact whose
 * subject is the pushed manifest (`push --sbom FORMAT --provenance`).
 */
export async function attachSupplyChain(o: SupplyChainOptions): Promise<AttachedArtifact[]> {
  if (!o.sbom && !o.provenance) return [];
  if (!o.source.confFile && !o.source.build) throw usageError('--sbom and --provenance need a conf.json or --path source (the store paths the image holds)');
  const input = await sbomInput({ ...o.source, ...(o.layers ? { layers: o.layers } : {}), imageDigest: o.digest, ...(o.log ? { log: o.log } : {}) });
  const documents: Array<{ artifactType: string; bytes: Buffer; annotations?: Record<string, string> }> = [];
  if (o.sbom) documents.push({ artifactType: SBOM_MEDIA_TYPES[o.sbom], bytes: renderSbom(input, o.sbom) });
  if (o.provenance) {
    const source = o.source.build ? { paths: o.source.build.paths, name: o.source.build.name } : { conf: o.source.confFile! };
    documents.push({
      artifactType: IN_TOTO_MEDIA_TYPE,
      bytes: provenanceStatement(input, o.name, source),
      annotations: { 'in-toto.io/predicate-type': SLSA_PROVENANCE_V1 },
    });
  }
  return withClient(
    `${o.name}@${o.digest}`,
    o,
    async (c) => {
      const head = await c.headManifest(o.digest);
      if (!head) throw new NixregError(`${o.name}@${o.digest} is not in the registry: nothing to attach to`);
      const subject = { mediaType: head.mediaType, digest: o.digest, size: head.size };
      const out: AttachedArtifact[] = [];
      for (const d of documents) {
        const blob = { mediaType: d.artifactType, bytes: d.bytes, ...(d.annotations ? { annotations: d.annotations } : {}) };
        const r = await attachArtifact(c, subject, d.artifactType, [blob]);
        out.push({ artifactType: d.artifactType, digest: r.descriptor.digest, via: r.via });
      }
      return out;
    },
    { push: true },
  );
}

export interface ReferrersResult {
  /** `REGISTRY/REPOSITORY@DIGEST` of the subject */
  subject: string;
  via: ReferrersVia;
  referrers: OciDescriptor[];
}

/** `nixreg referrers REF`: what is attached to the manifest REF names (referrers API, else the tag schema). */
export async function referrersOf(ref: string, access: RegistryAccess = {}, o: { artifactType?: string } = {}): Promise<ReferrersResult> {
  return withClient(ref, access, async (c, r) => {
    const wanted = refOf(r);
    const digest = DIGEST_RE.test(wanted) ? wanted : (await c.headManifest(wanted))?.digest;
    if (!digest) throw new NixregError(`${r.name}:${wanted} not found on ${r.registry}`);
    const { via, referrers } = await listReferrers(c, digest);
    // cosign's key-based signatures live under their own tag, not in the referrers list
    const sig = await c.headManifest(signatureTag(digest));
    if (sig && !referrers.some((d) => d.digest === sig.digest))
      referrers.push({
        mediaType: sig.mediaType,
        digest: sig.digest,
        size: sig.size,
        artifactType: SIMPLE_SIGNING_MEDIA_TYPE,
        annotations: { 'org.opencontainers.image.ref.name': signatureTag(digest) },
      });
    const list = o.artifactType ? referrers.filter((d) => d.artifactType === o.artifactType) : referrers;
    return { subject: `${r.name}@${digest}`, via, referrers: [...list].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0)) };
  });
}
