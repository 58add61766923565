import type { Argv, CommandModule } from 'yargs';
import type { GcManifest } from '../../ops/gc.js';
import { printResult, registryAccess, withRegistryFlags, type RegistryArgs } from '../registry-flags.js';

interface Args extends RegistryArgs {
  repository: string;
  keep: string[];
  dryRun?: boolean;
  taggedOnly?: boolean;
}

const line = (verb: string, m: GcManifest) =>
  `${verb} ${m.digest}${m.tags.length ? ` (${m.tags.join(', ')})` : ' (untagged)'}${m.subject ? `, attached to ${m.subject}` : ''}`;

/** `nixreg gc REPO --keep GLOB...`: delete what no kept tag reaches (index children and referrers included). */
export const command: CommandModule<object, Args> = {
  command: 'gc <repository>',
  describe: 'delete the manifests of a repository that no kept tag reaches (never a child or referrer of a kept image)',
  builder: (y) =>
    withRegistryFlags(y)
      .positional('repository', { type: 'string', demandOption: true, describe: 'REGISTRY/REPO' })
      .option('keep', { type: 'string', array: true, nargs: 1, demandOption: true, describe: 'tag glob to keep ("v*", "latest"; repeatable)' })
      .option('dry-run', { type: 'boolean', describe: 'list what would be deleted; delete nothing' })
      .option('tagged-only', {
        type: 'boolean',
        describe: 'when the registry cannot list untagged manifests: collect only those of tags --keep does not match',
      }) as unknown as Argv<Args>,
  handler: async (a) => {
    // loaded here, not at the top: parsing and --help do not pay for the HTTP client and the image pipeline
    const { gcRepository } = await import('../../ops/gc.js');
    const text = !a.json && !a.quiet;
    const r = await gcRepository(a.repository, registryAccess(a), {
      keep: a.keep.map(String),
      ...(a.dryRun ? { dryRun: true } : {}),
      ...(a.taggedOnly ? { taggedOnly: true } : {}),
      // each manifest is named before it is deleted, so an interrupted run has said what it did
      ...(text ? { onCandidate: (m: GcManifest) => void process.stdout.write(line(a.dryRun ? 'would delete' : 'deleting', m) + '\n') } : {}),
    });
    if (text)
      process.stderr.write(
        `${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted.length} manifests of ${r.repository}; kept ${r.kept} reached from ${r.keptTags.length} tags\n`,
      );
    else printResult(a, r, []);
  },
};
