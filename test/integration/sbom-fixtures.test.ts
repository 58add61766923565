import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { renderSbom, sbomInput } from '../../src/ops/sbom.js';
import { cycloneDx16Validator, spdx23Problems } from '../helpers/sbom-schemas.js';

// The SBOM of the fixture confs whose images nixpkgs' stream_layered_image.py made (test/fixtures/cases): each
// store path's layer diffID must be the one the script's manifest.json names for the layer listing that path,
// and the NAR hashes and references those of the exportReferencesGraph graph given with --graph.
let root: string;
beforeAll(async () => {
  root = await buildStoreTree();
});
afterAll(async () => {
  if (root) await removeStoreTree(root);
});

describe.each(['a-defaults', 'c-popularity-4'])('sbom of fixture case %s', (name) => {
  it('layer of every store path as stream_layered_image.py made it; graph hashes and edges', async () => {
    const dir = join(FIXTURES, 'cases', name);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    const manifest = JSON.parse(Buffer.from(expected.manifest.base64, 'base64').toString('utf8'))[0] as { Layers: string[] };
    const diffIDs = manifest.Layers.map((l) => 'sha256:' + l.split('/')[0]);
    const conf = JSON.parse(readFileSync(join(dir, 'conf.json'), 'utf8')) as { store_layers: string[][] };
    const graphFile = join(dir, expected.layering);
    const graph = JSON.parse(readFileSync(graphFile, 'utf8')).graph as Array<{ path: string; narHash: string; references: string[] }>;

    const input = await sbomInput({ confFile: join(dir, 'conf.json'), storeRoot: root, graphFile, cache: false, toolVersion: 'test' });
    const bom = JSON.parse(renderSbom(input, 'cyclonedx').toString());
    expect(cycloneDx16Validator()(bom)).toEqual([]);
    expect(spdx23Problems(JSON.parse(renderSbom(input, 'spdx').toString()))).toEqual([]);

    const all = conf.store_layers.flat();
    let withGraph = 0;
    expect(bom.components).toHaveLength(new Set(all).size);
    conf.store_layers.forEach((paths, i) => {
      for (const p of paths) {
        const c = bom.components.find((x: any) => x['bom-ref'] === p);
        expect(c, p).toBeDefined();
        expect(c.properties).toContainEqual({ name: 'nixreg:layer_diff_id', value: diffIDs[i] });
        const node = graph.find((n) => n.path === p);
        if (!node) continue; // helper paths the conf derivation adds are not in the closure graph
        withGraph++;
        expect(c.properties).toContainEqual({ name: 'nix:nar_hash', value: node.narHash });
        expect(bom.dependencies.find((d: any) => d.ref === p).dependsOn).toEqual(node.references.filter((r) => r !== p && all.includes(r)).sort());
      }
    });
    expect(withGraph).toBe(graph.filter((n) => all.includes(n.path)).length);
    expect(withGraph).toBeGreaterThan(5);
    expect(bom.metadata.component.properties.map((x: any) => x.value)).toEqual(diffIDs);
  });
});
