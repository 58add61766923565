import type { CommandModule } from 'yargs';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { parseSha256, toHex, toNix32, toSRI } from '../../digest/nixhash.js';
import { describeSystemError, fileError, usageError } from '../../errors.js';

interface Args {
  input: string;
  file?: boolean;
  to?: 'sri' | 'nix32' | 'hex';
}

/** `nixreg hash`: nix-hash --flat and `nix hash to-*` for sha256, without Nix. */
export const command: CommandModule<object, Args> = {
  command: 'hash <input>',
  describe: 'convert a sha256 between nix base32, hex and SRI, or hash a file flat (--file)',
  builder: (y) =>
    y
      .positional('input', { type: 'string', demandOption: true, describe: 'a sha256 in any form, or a path with --file' })
      .option('file', { type: 'boolean', describe: 'hash the file at <input> (flat, like nix-hash --flat)' })
      .option('to', { choices: ['sri', 'nix32', 'hex'] as const, default: 'sri' as const, describe: 'output encoding' }),
  handler: async (a) => {
    let raw: Buffer;
    if (a.file) {
      const h = createHash('sha256');
      try {
        await pipeline(createReadStream(a.input, { highWaterMark: 1 << 20 }), h);
      } catch (err) {
        throw fileError(`cannot read ${a.input}: ${describeSystemError(err)}`, err);
      }
      raw = h.digest();
    } else {
      if (!a.input) throw usageError('hash: give a hash to convert, or --file PATH');
      raw = parseSha256(a.input);
    }
    const out = a.to === 'hex' ? toHex(raw) : a.to === 'nix32' ? toNix32(raw) : toSRI(raw);
    process.stdout.write(out + '\n');
  },
};
