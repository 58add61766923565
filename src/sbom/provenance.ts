import { jsonBytes, narHashHex, compareCodePoints } from './document-parts.js';
import type { SbomInput } from './model.js';

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** The build type nixreg names: its own image layout from store paths (streamLayeredImage's). */
export const NIXREG_BUILD_TYPE = 'urn:nixreg:build-type:layered-image:v1';

export interface ProvenanceSource {
  /** the conf the image was made from ... */
  conf?: string;
  /** ... or the store paths given with --path and the image name */
  paths?: string[];
  name?: string;
}

/**
 * An in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) with a SLSA
 * provenance v1 predicate (https://slsa.dev/spec/v1.0/provenance): the pushed manifest as subject, the conf or
 * store paths as external parameters, every store path of the image as a resolved dependency (its NAR hash as
 * digest), nixreg and its version as the builder. No clock reading: the same push gives the same statement.
 */
export function provenanceStatement(input: SbomInput, subjectName: string, source: ProvenanceSource): Buffer {
  if (!input.imageDigest) throw new Error('provenance needs the pushed manifest digest');
  const resolvedDependencies = [...input.paths]
    .sort((a, b) => compareCodePoints(a.path, b.path))
    .map((p) => {
      const hex = narHashHex(p.narHash);
      return {
        uri: `file://${p.path}`,
        name: p.path.slice(p.path.lastIndexOf('/') + 1),
        ...(hex ? { digest: { sha256: hex } } : {}),
        ...(p.narHash ? { annotations: { narHash: p.narHash } } : {}),
      };
    });
  return jsonBytes({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: subjectName, digest: { sha256: input.imageDigest.replace(/^sha256:/, '') } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: NIXREG_BUILD_TYPE,
        externalParameters: {
          ...(source.conf !== undefined ? { conf: source.conf } : {}),
          ...(source.paths ? { paths: [...source.paths] } : {}),
          ...(source.name !== undefined ? { name: source.name } : {}),
        },
        internalParameters: { layers: input.layers.map((l) => ({ diffID: l.diffID, ...(l.digest ? { digest: l.digest } : {}) })) },
        resolvedDependencies,
      },
      runDetails: { builder: { id: 'urn:nixreg:builder', version: { nixreg: input.toolVersion } } },
    },
  });
}
