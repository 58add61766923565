import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

/**
 * The published CycloneDX 1.6 JSON schema (with the SPDX licence-id and JSF schemas it references), as
 * @cyclonedx/cyclonedx-library ships them in res/schema, compiled with ajv (draft-07) and ajv-formats.
 */
export function cycloneDx16Validator(): (doc: unknown) => string[] {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json')), 'res/schema');
  const load = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
  const ajv = new (Ajv as unknown as typeof Ajv.default)({ strict: false, allErrors: true });
  (addFormats as unknown as typeof addFormats.default)(ajv);
  // draft-07 formats ajv-formats does not implement: accepted as given (their ASCII forms are checked as uri-reference/email)
  ajv.addFormat('iri-reference', true).addFormat('idn-email', true);
  // bom-1.6 refers to its neighbours by their file names, relative to its $id
  for (const f of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json']) ajv.addSchema({ ...load(f), $id: `http://cyclonedx.org/schema/${f}` });
  const validate = ajv.compile(load('bom-1.6.SNAPSHOT.schema.json'));
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
}

/**
 * SPDX 2.3 has no schema package on the npm registry: the required fields of the SPDX 2.3 JSON schema
 * (https://github.com/spdx/spdx-spec/blob/development/v2.3/schemas/spdx-schema.json) checked by hand.
 */
export function spdx23Problems(doc: any): string[] {
  const p: string[] = [];
  const need = (o: any, keys: string[], where: string) => {
    for (const k of keys) if (o?.[k] === undefined) p.push(`${where}: missing ${k}`);
  };
  need(doc, ['SPDXID', 'spdxVersion', 'creationInfo', 'name', 'dataLicense', 'documentNamespace'], 'document');
  if (doc.spdxVersion !== 'SPDX-2.3') p.push('spdxVersion is not SPDX-2.3');
  if (doc.dataLicense !== 'CC0-1.0') p.push('dataLicense is not CC0-1.0');
  if (doc.SPDXID !== 'SPDXRef-DOCUMENT') p.push('SPDXID is not SPDXRef-DOCUMENT');
  if (!/^[a-z][a-z0-9+.-]*:[^#]+$/i.test(doc.documentNamespace ?? '')) p.push('documentNamespace is not a URI without #');
  need(doc.creationInfo, ['created', 'creators'], 'creationInfo');
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(doc.creationInfo?.created ?? '')) p.push('creationInfo.created is not YYYY-MM-DDThh:mm:ssZ');
  if (!Array.isArray(doc.creationInfo?.creators) || !doc.creationInfo.creators.length) p.push('creationInfo.creators is empty');
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const [i, pkg] of (doc.packages ?? []).entries()) {
    need(pkg, ['SPDXID', 'name', 'downloadLocation'], `packages[${i}]`);
    if (!/^SPDXRef-[A-Za-z0-9.-]+$/.test(pkg.SPDXID)) p.push(`packages[${i}]: bad SPDXID ${pkg.SPDXID}`);
    if (ids.has(pkg.SPDXID)) p.push(`packages[${i}]: SPDXID ${pkg.SPDXID} twice`);
    ids.add(pkg.SPDXID);
    if (pkg.filesAnalyzed !== false && !pkg.packageVerificationCode) p.push(`packages[${i}]: filesAnalyzed without packageVerificationCode`);
    for (const c of pkg.checksums ?? []) if (c.algorithm !== 'SHA256' || !/^[0-9a-f]{64}$/.test(c.checksumValue)) p.push(`packages[${i}]: bad checksum`);
    for (const r of pkg.externalRefs ?? []) need(r, ['referenceCategory', 'referenceType', 'referenceLocator'], `packages[${i}].externalRefs`);
    for (const a of pkg.annotations ?? []) need(a, ['annotationDate', 'annotationType', 'annotator', 'comment'], `packages[${i}].annotations`);
  }
  for (const [i, r] of (doc.relationships ?? []).entries()) {
    need(r, ['spdxElementId', 'relationshipType', 'relatedSpdxElement'], `relationships[${i}]`);
    for (const k of ['spdxElementId', 'relatedSpdxElement']) if (!ids.has(r[k])) p.push(`relationships[${i}]: ${k} ${r[k]} names no element`);
  }
  return p;
}
