import type { CommandModule } from 'yargs';
import { NixregError } from '../../errors.js';

// Placeholder until the pull command lands; replaced by its implementation.
export const command: CommandModule = {
  command: 'pull',
  describe: '(pull: not implemented yet)',
  handler: () => {
    throw new NixregError('pull is not implemented yet');
  },
};
