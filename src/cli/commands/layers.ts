import type { CommandModule } from 'yargs';
import { computeStoreLayers, readExcludeFile, readGraphFile, availableLayers } from '../../nix/layering/index.js';
import { formatLayersLikePython } from '../../nix/layering/format.js';

interface Args {
  graph: string;
  'max-layers': number;
  'from-image-layers': number;
  algorithm: 'auto' | 'popularity';
  exclude?: string;
}

/** `nixreg layers`: streamLayeredImage's store_layers for an exportReferencesGraph closure graph. */
export const command: CommandModule<object, Args> = {
  command: 'layers <graph>',
  describe: "split a closure graph (exportReferencesGraph JSON) into store layers exactly like nixpkgs' dockerTools",
  builder: (y) =>
    y
      .positional('graph', { type: 'string', demandOption: true, describe: 'graph JSON: a list, or an object with a "graph" key (.attrs.json)' })
      .option('max-layers', { type: 'number', default: 100, describe: 'maxLayers of the whole image (base layers and customisation layer included)' })
      .option('from-image-layers', { type: 'number', default: 0, describe: 'number of layers in the fromImage base' })
      .option('algorithm', {
        choices: ['auto', 'popularity'] as const,
        default: 'auto' as const,
        describe: 'auto: auto-layer.py (current default); popularity: the 2020-2024 popularity contest',
      })
      .option('exclude', { type: 'string', describe: 'file of store paths (one a line) to keep out of the layers, e.g. baseJson and the customisation layer' }),
  handler: async (a) => {
    // Check the budget before reading anything, so a bad --max-layers is a usage error even with a bad graph path.
    availableLayers(a['max-layers'], a['from-image-layers']);
    const graph = await readGraphFile(a.graph);
    const exclude = a.exclude ? await readExcludeFile(a.exclude) : [];
    const layers = computeStoreLayers(graph, {
      maxLayers: a['max-layers'],
      fromImageLayers: a['from-image-layers'],
      algorithm: a.algorithm,
      exclude,
    });
    process.stdout.write(formatLayersLikePython(layers) + '\n');
  },
};
