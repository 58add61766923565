import { openSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, NixregError } from '../../src/errors.js';
import { openAtomic } from '../../src/util/atomic-file.js';

describe('output write errors keep their system cause', () => {
  it('a full disk (ENOSPC from /dev/full, written through a descriptor path) reads E_NO_SPACE', async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const out = await openAtomic(`/dev/fd/${fd}`);
      out.stream.write(Buffer.alloc(1 << 16));
      const err = await out.commit().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NixregError);
      expect((err as NixregError).message).toMatch(/cannot write output \/dev\/fd\/\d+: no space left/);
      expect((err as NixregError).code).toBe(ErrorCode.noSpace);
    } finally {
      closeSync(fd);
    }
  });
});
