import { describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import { RetryLater } from '../../src/registry/upload-errors.js';
import { RetryBudget, withRetries, type RetryPolicy } from '../../src/sink/registry/retry.js';

// --retry-max-time shared by every blob of a push: the waits of one blob's retries count against the next blob's.
const line = (m: string, wait: number, next: number, all: number) => `failed (${m}); retrying in ${wait} ms (${next}/${all})`;

/** An attempt function failing with a 429 asking for `retryAfterMs`, `failures` times, then returning 'ok'. */
function limited(failures: number, retryAfterMs: number) {
  const f = Object.assign(
    async (): Promise<string> => {
      f.calls++;
      if (f.calls <= failures) throw new RetryLater('blob upload to r/x: HTTP 429 from r', retryAfterMs);
      return 'ok';
    },
    { calls: 0 },
  );
  return f;
}

describe('RetryBudget', () => {
  it('two blobs in a row: the second stops where the first left the budget', async () => {
    const budget = new RetryBudget(2500);
    const policy: RetryPolicy = { attempts: 5, baseDelayMs: 1, budget };
    const first = limited(2, 1000);
    await expect(withRetries(policy, first, { retryLine: line })).resolves.toBe('ok');
    expect(first.calls).toBe(3);
    // at least 2 s of the 2.5 s are spent: one more 1 s wait would pass it
    const second = limited(2, 1000);
    const err = await withRetries(policy, second, { retryLine: line }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toContain('would pass --retry-max-time');
    expect(second.calls).toBe(1);
  });

  it('without a shared budget each call has its own (maxTimeMs)', async () => {
    // 600 ms of waits each: both fit 1 s alone, not together
    const policy: RetryPolicy = { attempts: 5, baseDelayMs: 1, maxTimeMs: 1000 };
    for (let i = 0; i < 2; i++) await expect(withRetries(policy, limited(2, 300), { retryLine: line })).resolves.toBe('ok');
  });

  it('blobs retrying side by side count the time once', async () => {
    const budget = new RetryBudget(4000);
    const policy: RetryPolicy = { attempts: 5, baseDelayMs: 1, budget };
    // each waits 2 × 1 s at the same time: 2 s and more of wall-clock time, not the 6 s their waits add up to
    const all = await Promise.all([0, 1, 2].map(() => withRetries(policy, limited(2, 1000), { retryLine: line })));
    expect(all).toEqual(['ok', 'ok', 'ok']);
    expect(budget.spentMs()).toBeGreaterThanOrEqual(2000);
  });
});
