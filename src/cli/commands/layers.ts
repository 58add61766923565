import type { CommandModule } from 'yargs';
import { NixregError } from '../../errors.js';

// Placeholder until the layers command lands; replaced by its implementation.
export const command: CommandModule = {
  command: 'layers',
  describe: '(layers: not implemented yet)',
  handler: () => {
    throw new NixregError('layers is not implemented yet');
  },
};
