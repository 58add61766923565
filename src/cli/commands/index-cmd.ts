import type { Argv, CommandModule } from 'yargs';
import { parsePlatform } from '../../manifest/platform-string.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  action: 'create' | 'append';
  dest: string;
  sources: string[];
  format?: 'oci' | 'docker';
  requirePlatform?: string[];
}

/** `nixreg index create|append DEST SRC...`: stitch per-platform images (built on separate runners) into one index. */
export const command: CommandModule<object, Args> = {
  command: 'index <action> <dest> <sources..>',
  describe: 'make (create) or extend (append) a multi-platform index from images already in the registry',
  builder: (y) =>
    withRegistryFlags(y)
      .positional('action', { choices: ['create', 'append'] as const, demandOption: true, describe: 'create a new index, or append to DEST' })
      .positional('dest', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO:TAG to tag the index as' })
      .positional('sources', { type: 'string', array: true, demandOption: true, describe: 'images or indexes on the same registry (any repository)' })
      .option('format', { choices: ['oci', 'docker'] as const, describe: 'OCI index (create default) or Docker manifest list; append keeps what DEST is' })
      .option('require-platform', {
        type: 'string',
        array: true,
        nargs: 1,
        describe: 'os/arch[/variant] the index must hold, or nothing is tagged (repeatable)',
      }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { appendIndex, createIndex } = await import('../../ops/image-index.js');
    const requirePlatforms = (a.requirePlatform ?? []).map((p) => parsePlatform(String(p), '--require-platform'));
    const run = a.action === 'append' ? appendIndex : createIndex;
    const r = await run(a.dest, a.sources.map(String), registryAccess(a), { ...(a.format ? { format: a.format } : {}), requirePlatforms });
    printResult(a, r, [`${r.reference} ${r.digest}`, ...r.manifests.map((m) => `  ${m.platform || '(no platform)'} ${m.digest}`)]);
  },
};
