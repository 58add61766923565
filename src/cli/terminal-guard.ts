import { usageError } from '../errors.js';

/**
 * Binary tar on a terminal garbles it and helps no one (docker save refuses too): stdout output (no -o, or -o -)
 * must be redirected or piped.
 */
export function refuseTarOnTerminal(output: string | undefined, command: string): void {
  if ((output === undefined || output === '-') && process.stdout.isTTY)
    throw usageError(`${command}: refusing to write a tar archive to a terminal; pass -o FILE, or redirect stdout (e.g. | docker load)`);
}
