import type { CommandModule } from 'yargs';
import { NixregError } from '../../errors.js';

// Placeholder until the stream command lands; replaced by its implementation.
export const command: CommandModule = {
  command: 'stream',
  describe: '(stream: not implemented yet)',
  handler: () => {
    throw new NixregError('stream is not implemented yet');
  },
};
