import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, freePort, type Distribution } from '../helpers/distribution.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseImageReference } from '../../src/reference/reference.js';
import { ErrorCode, ExitCode, NixregError, describeSystemError, errorCodes, fileError } from '../../src/errors.js';

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<NixregError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(NixregError);
    return err as NixregError;
  }
  throw new Error('expected a failure');
}

describe('NixregError codes', () => {
  let reg: Distribution;
  beforeAll(async () => {
    reg = await startDistribution();
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it('the exported list holds each code once, all E_ names', () => {
    expect(new Set(errorCodes).size).toBe(errorCodes.length);
    for (const c of errorCodes) expect(c).toMatch(/^E_[A-Z_]+$/);
    expect(errorCodes).toEqual(expect.arrayContaining(['E_USAGE', 'E_AUTH', 'E_NOT_FOUND', 'E_INTEGRITY', 'E_NETWORK', 'E_NO_SPACE']));
  });

  it('the exit status gives the code when nothing narrower is known', () => {
    const byExit: [number, string][] = [
      [ExitCode.failure, ErrorCode.failure],
      [ExitCode.usage, ErrorCode.usage],
      [ExitCode.auth, ErrorCode.auth],
      [ExitCode.notFound, ErrorCode.notFound],
      [ExitCode.integrity, ErrorCode.integrity],
    ];
    for (const [exit, code] of byExit) {
      const e = new NixregError('x', exit as (typeof ExitCode)[keyof typeof ExitCode]);
      expect([e.exitCode, e.code, e.retryable]).toEqual([exit, code, false]);
    }
  });

  it('a malformed reference is E_USAGE with exit status 2', async () => {
    const e = await errorOf(() => parseImageReference('UPPER/Case::bad'));
    expect([e.exitCode, e.code, e.retryable]).toEqual([ExitCode.usage, 'E_USAGE', false]);
  });

  it('a missing tag on a real registry is E_NOT_FOUND', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'codes/none' });
    const e = await errorOf(client.getManifest('nope'));
    expect([e.exitCode, e.code]).toEqual([ExitCode.notFound, 'E_NOT_FOUND']);
    await client.close();
  });

  it('connection refused is E_NETWORK, retryable, with the message and exit status unchanged', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const client = new RegistryClient({ registry: host, repository: 'r/x' });
    const e = await errorOf(client.getManifest('v1'));
    expect(e.message).toBe(`cannot reach registry ${host}: connection refused`);
    expect([e.exitCode, e.code, e.retryable]).toEqual([ExitCode.failure, 'E_NETWORK', true]);
    await client.close();
  });

  it('a full disk (a real ENOSPC from /dev/full) is E_NO_SPACE, not retryable', async () => {
    let cause: unknown;
    await writeFile('/dev/full', 'x').catch((err) => (cause = err));
    expect((cause as { code?: string }).code).toBe('ENOSPC');
    const e = fileError(`cannot write output /dev/full: ${describeSystemError(cause)}`, cause);
    expect(e.message).toMatch(/^cannot write output \/dev\/full: no space left on device/);
    expect([e.exitCode, e.code, e.retryable]).toEqual([ExitCode.failure, 'E_NO_SPACE', false]);
  });

  it('an explicit code and retryable win over the derived ones', () => {
    const e = new NixregError('busy', ExitCode.failure, { code: ErrorCode.network, retryable: false });
    expect([e.code, e.retryable]).toEqual(['E_NETWORK', false]);
  });

  it('a wrapped NixregError keeps its own message in describeSystemError, not its code', () => {
    expect(describeSystemError(new NixregError('blob sha256:ab: HTTP 500'))).toBe('blob sha256:ab: HTTP 500');
  });
});
