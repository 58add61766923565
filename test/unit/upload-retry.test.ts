import { describe, expect, it } from 'vitest';
import { ExitCode, NixregError, integrityError } from '../../src/errors.js';
import { StreamedUploadRejected } from '../../src/registry/client.js';
import { QuotaExhausted, RetryLater } from '../../src/registry/upload-errors.js';
import { markPermanent, withRetries, type RetryPolicy } from '../../src/sink/registry/retry.js';

// The one retry wrapper of every blob upload: which failures are retried, how often, what is not counted,
// and the lost-answer check before a retry.
const policy = (over: Partial<RetryPolicy> = {}): RetryPolicy & { lines: string[] } => {
  const lines: string[] = [];
  return { attempts: 3, baseDelayMs: 1, maxDelayMs: 2, log: (l) => lines.push(l), lines, ...over };
};
const line = (m: string, _w: number, next: number, all: number) => `failed (${m}); retrying (${next}/${all})`;

/** An attempt function failing with `errors` in turn, then returning 'ok'; counts its calls. */
function attempts(...errors: unknown[]) {
  const f = Object.assign(
    async (): Promise<string> => {
      f.calls++;
      if (errors.length) throw errors.shift();
      return 'ok';
    },
    { calls: 0 },
  );
  return f;
}
const network = () => new NixregError('PATCH 127.0.0.1:1: other side closed');

describe('withRetries', () => {
  it('retries network failures up to the attempts, logging each retry', async () => {
    const p = policy();
    const f = attempts(network(), network());
    await expect(withRetries(p, f, { retryLine: line })).resolves.toBe('ok');
    expect(f.calls).toBe(3);
    expect(p.lines).toEqual(['failed (PATCH 127.0.0.1:1: other side closed); retrying (2/3)', 'failed (PATCH 127.0.0.1:1: other side closed); retrying (3/3)']);
    const g = attempts(network(), network(), network());
    await expect(withRetries(policy(), g, { retryLine: line })).rejects.toThrow('other side closed');
    expect(g.calls).toBe(3);
  });

  it('does not retry a used-up quota, an integrity or auth error, or a marked generation error', async () => {
    for (const err of [
      new QuotaExhausted('quota'),
      integrityError('digest mismatch'),
      new NixregError('denied', ExitCode.auth),
      markPermanent(new NixregError('store read failed')),
    ]) {
      const f = attempts(err);
      await expect(withRetries(policy(), f, { retryLine: line })).rejects.toBe(err);
      expect(f.calls).toBe(1);
    }
  });

  it('a Retry-After that would pass --retry-max-time fails at once, naming the option', async () => {
    const f = attempts(new RetryLater('HTTP 429', 60_000));
    const err = await withRetries(policy({ maxTimeMs: 1000 }), f, { retryLine: line }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toBe(
      'the upload failed after 1 attempt (429): HTTP 429; waiting 60 s more would pass --retry-max-time; check the registry or raise --retry-max-time',
    );
    expect(f.calls).toBe(1);
  });

  it("once the attempts are used up, one line names the blob, each attempt's failure and what to do", async () => {
    const reset = new NixregError('PATCH 127.0.0.1:1: other side closed', ExitCode.failure, {
      cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
    });
    const f = attempts(
      reset,
      new NixregError('blob upload to r/x: HTTP 503 from r: UNAVAILABLE'),
      new RetryLater('blob upload to r/x: HTTP 429 from r'),
      network(),
    );
    const err = await withRetries(policy({ attempts: 4 }), f, { retryLine: line, what: () => 'blob sha256:ab upload to r/x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toBe(
      'blob sha256:ab upload to r/x failed after 4 attempts (reset, 503, 429, reset): PATCH 127.0.0.1:1: other side closed; check the registry or raise --retry-times',
    );
    expect((err as NixregError).exitCode).toBe(ExitCode.failure);
    expect(f.calls).toBe(4);
  });

  it('an adaptation (the registry wants chunks) repeats the attempt without counting it, a bounded number of times', async () => {
    const rejected = () => new StreamedUploadRejected('streamed PATCH refused', 411);
    const f = attempts(rejected(), network(), network());
    let adaptations = 0;
    const adapt = (e: unknown) => e instanceof StreamedUploadRejected && ++adaptations > 0;
    await expect(withRetries(policy(), f, { retryLine: line, adapt })).resolves.toBe('ok');
    expect(f.calls).toBe(4); // 1 adapted + 3 counted
    const always = attempts(...Array.from({ length: 10 }, rejected));
    const err = await withRetries(policy(), always, { retryLine: line, adapt: () => true }).catch((e: unknown) => e);
    expect((err as Error).cause).toBeInstanceOf(StreamedUploadRejected);
    expect(always.calls).toBe(3 + 3); // three adaptations, then three counted attempts
  });

  it('before a retry, a blob found in the registry (its answer was lost) ends the retries', async () => {
    const f = attempts(network(), network());
    let asked = 0;
    const r = await withRetries(policy(), f, { retryLine: line, alreadyThere: async () => (++asked === 1 ? 'there' : undefined) });
    expect(r).toBe('there');
    expect(f.calls).toBe(1);
    expect(asked).toBe(1);
  });
});
