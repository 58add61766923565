import { contentUuid, jsonBytes, narHashHex, pathFacts, splitImage, type PathFacts } from './document-parts.js';
import { nixPurl, storePathHash } from './store-name.js';
import type { SbomInput } from './model.js';

const IMAGE_ID = 'SPDXRef-Image';
/** SPDX 2.3 requires a creation time; without one in the input, the epoch stands for "not recorded". */
const NO_TIME = '1970-01-01T00:00:00Z';

/**
 * An SPDX 2.3 JSON document (https://spdx.github.io/spdx-spec/v2.3/): the image package CONTAINS one package per
 * store path (purl external reference, NAR hash checksum, the layer holding it as an annotation), store paths
 * DEPENDS_ON their references. Deterministic: sorted, the namespace derived from the content.
 */
export function spdxDocument(input: SbomInput): Buffer {
  const facts = pathFacts(input);
  const ids = new Map(facts.map((f) => [f.path, packageId(f)]));
  const created = (input.created ?? NO_TIME).replace(/\.\d+Z$/, 'Z');
  const tool = `Tool: nixreg-${input.toolVersion}`;
  const { name, tag } = splitImage(input.image);
  const image = {
    SPDXID: IMAGE_ID,
    name,
    ...(tag ? { versionInfo: tag } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    primaryPackagePurpose: 'CONTAINER',
    ...(input.imageDigest ? { checksums: [{ algorithm: 'SHA256', checksumValue: input.imageDigest.replace(/^sha256:/, '') }] } : {}),
    ...(input.layers.length
      ? { annotations: input.layers.map((l, i) => annotation(created, tool, `nixreg:layer:${i}=${l.digest ? `${l.digest} ` : ''}${l.diffID}`)) }
      : {}),
  };
  const packages = [image, ...facts.map((f) => pkg(f, ids.get(f.path)!, created, tool))];
  const relationships = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: IMAGE_ID },
    ...facts.map((f) => ({ spdxElementId: IMAGE_ID, relationshipType: 'CONTAINS', relatedSpdxElement: ids.get(f.path)! })),
    ...facts.flatMap((f) => f.references.map((r) => ({ spdxElementId: ids.get(f.path)!, relationshipType: 'DEPENDS_ON', relatedSpdxElement: ids.get(r)! }))),
  ];
  const body = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: input.image,
    creationInfo: { created, creators: [tool] },
    packages,
    relationships,
  };
  const documentNamespace = `urn:uuid:${contentUuid(JSON.stringify(body))}`;
  const { creationInfo, packages: p, relationships: r, ...head } = body;
  return jsonBytes({ ...head, documentNamespace, creationInfo, packages: p, relationships: r });
}

/** SPDXRef-<hash part>-<name>: unique per store path, within the allowed [A-Za-z0-9.-]. */
function packageId(f: PathFacts): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9.-]/g, '-');
  const hash = storePathHash(f.path);
  return `SPDXRef-Package-${safe(hash ? `${hash}-${f.name}` : f.path)}`;
}

function annotation(date: string, annotator: string, comment: string) {
  return { annotationDate: date, annotationType: 'OTHER', annotator, comment };
}

function pkg(f: PathFacts, id: string, created: string, tool: string): Record<string, unknown> {
  const hex = narHashHex(f.narHash);
  const notes = [`nix:store_path=${f.path}`];
  if (f.layer)
    notes.push(
      `nixreg:layer_index=${f.layerIndex}`,
      `nixreg:layer_diff_id=${f.layer.diffID}`,
      ...(f.layer.digest ? [`nixreg:layer_digest=${f.layer.digest}`] : []),
    );
  return {
    SPDXID: id,
    name: f.name,
    ...(f.version ? { versionInfo: f.version } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    ...(hex ? { checksums: [{ algorithm: 'SHA256', checksumValue: hex }] } : {}),
    ...(f.license ? { licenseDeclared: f.license } : {}),
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: nixPurl(f.name, f.version) }],
    annotations: notes.map((n) => annotation(created, tool, n)),
  };
}
