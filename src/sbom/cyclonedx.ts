import { contentUuid, jsonBytes, narHashHex, pathFacts, splitImage, topLevel, type PathFacts } from './document-parts.js';
import { nixPurl } from './store-name.js';
import type { SbomInput } from './model.js';

const IMAGE_REF = 'image';

/**
 * A CycloneDX 1.6 JSON BOM (https://cyclonedx.org/docs/1.6/json/): the image as metadata.component (type
 * container), every store path a component with its purl, NAR hash and the layer holding it (properties), and
 * the closure graph as dependencies. The same input gives the same bytes: sorted, the serial number derived from
 * the content, a timestamp only when the input has one.
 */
export function cycloneDxBom(input: SbomInput): Buffer {
  const facts = pathFacts(input);
  const { name, tag } = splitImage(input.image);
  const image = {
    type: 'container',
    'bom-ref': IMAGE_REF,
    name,
    ...(tag ? { version: tag } : {}),
    ...(input.imageDigest ? { hashes: [{ alg: 'SHA-256', content: input.imageDigest.replace(/^sha256:/, '') }] } : {}),
    properties: input.layers.map((l, i) => ({ name: `nixreg:layer:${i}`, value: l.digest ? `${l.digest} ${l.diffID}` : l.diffID })),
  };
  const body = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    metadata: {
      ...(input.created ? { timestamp: input.created } : {}),
      tools: { components: [{ type: 'application', name: 'nixreg', version: input.toolVersion }] },
      component: image,
    },
    components: facts.map(component),
    dependencies: [{ ref: IMAGE_REF, dependsOn: topLevel(facts) }, ...facts.map((f) => ({ ref: f.path, dependsOn: f.references }))],
  };
  const serialNumber = `urn:uuid:${contentUuid(JSON.stringify(body))}`;
  const { bomFormat, specVersion, ...rest } = body;
  return jsonBytes({ $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json', bomFormat, specVersion, serialNumber, ...rest });
}

function component(f: PathFacts): Record<string, unknown> {
  const hex = narHashHex(f.narHash);
  const props: Array<{ name: string; value: string }> = [{ name: 'nix:store_path', value: f.path }];
  if (f.narHash) props.push({ name: 'nix:nar_hash', value: f.narHash });
  if (f.layer) {
    props.push({ name: 'nixreg:layer_index', value: String(f.layerIndex) });
    props.push({ name: 'nixreg:layer_diff_id', value: f.layer.diffID });
    if (f.layer.digest) props.push({ name: 'nixreg:layer_digest', value: f.layer.digest });
  }
  return {
    type: 'library',
    'bom-ref': f.path,
    name: f.name,
    ...(f.version ? { version: f.version } : {}),
    ...(hex ? { hashes: [{ alg: 'SHA-256', content: hex }] } : {}),
    ...(f.license ? { licenses: [{ expression: f.license }] } : {}),
    purl: nixPurl(f.name, f.version),
    properties: props,
  };
}
