import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirTarget } from '../../src/sink/oci-layout/layout-target.js';
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

  it('an OCI directory output that cannot be created keeps the system error as its cause', async () => {
    const work = mkdtempSync(join(tmpdir(), 'nixreg-dir-error-'));
    try {
      writeFileSync(join(work, 'file'), 'x');
      const err = await DirTarget.open(join(work, 'file', 'layout')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NixregError);
      expect((err as NixregError).message).toMatch(/^cannot write output .*file\/layout: /);
      expect(((err as NixregError).cause as { code?: string } | undefined)?.code).toBe('ENOTDIR');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
