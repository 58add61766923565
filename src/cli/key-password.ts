import { NixregError } from '../errors.js';

/** The key password: `--key-password-stdin` (first line of stdin), else COSIGN_PASSWORD as cosign reads it, else none. */
export async function keyPassword(fromStdin: boolean | undefined): Promise<string | undefined> {
  // set but empty is a password too: cosign generate-key-pair accepts an empty one
  if (!fromStdin) return process.env.COSIGN_PASSWORD;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    parts.push(c as Buffer);
    size += (c as Buffer).length;
    if (size > 1 << 16) throw new NixregError('--key-password-stdin: more than 64 KiB on stdin; expected one line with the password');
  }
  return Buffer.concat(parts)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
