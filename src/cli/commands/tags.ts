import type { Argv, CommandModule } from 'yargs';
import { usageError } from '../../errors.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

const pageSize = (n: number | undefined): number | undefined => {
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw usageError('--page-size must be a whole number, 1 or more');
  return n;
};

interface Args extends RegistryArgs {
  repository: string;
  pageSize?: number;
}

/** `nixreg tags REPO`: every tag, one a line (crane ls, skopeo list-tags). */
export const command: CommandModule<object, Args> = {
  command: 'tags <repository>',
  describe: "list a repository's tags, every page",
  builder: (y) =>
    withRegistryFlags(y)
      .positional('repository', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO (docker:// prefix optional)' })
      .option('page-size', { type: 'number', describe: 'ask for N tags a page (n=N); every page is read either way' }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { listTags } = await import('../../ops/tags.js');
    const r = await listTags(a.repository, registryAccess(a), pageSize(a.pageSize));
    printResult(a, { Repository: r.repository, Tags: r.tags }, r.tags);
  },
};
