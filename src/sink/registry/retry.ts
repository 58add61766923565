import { ExitCode, NixregError } from '../../errors.js';
import { QuotaExhausted, RetryLater } from '../../registry/upload-errors.js';

/**
 * How every blob upload into a registry is retried. An upload's PATCH body is a stream the transport never
 * replays, so a failed attempt is repeated whole: a new upload session, the body opened (or the layer
 * generated) again. What is retried: network failures and 429/5xx answers (NixregErrors of exit code 1).
 * What is not: a used-up quota (QuotaExhausted), auth/usage/integrity errors, and errors of the body's own
 * production (markPermanent: a store read or a compressor failing would fail the same way again).
 */
export interface RetryPolicy {
  /** Attempts in all. */
  attempts: number;
  /** Wait before attempt n + 1 when the registry named none (Retry-After): min(maxDelayMs, baseDelayMs × n). */
  baseDelayMs: number;
  maxDelayMs?: number;
  /** --retry-max-time: the longest one blob keeps trying, waits included, counted from its first attempt. */
  maxTimeMs?: number;
  log?: (line: string) => void;
}

export interface RetryHooks<T> {
  /** The log line announcing a retry. */
  retryLine(message: string, waitMs: number, next: number, attempts: number): string;
  /**
   * The registry refused how the body was sent (a streamed PATCH, chunks, chunks this small): true when the caller
   * changed how, and the attempt is repeated without counting as a failure (at most MAX_ADAPTATIONS times a blob).
   */
  adapt?(err: unknown): boolean;
  /** Asked before each retry: the failed attempt's blob may have arrived with only its answer lost. */
  alreadyThere?(): Promise<T | undefined>;
}

const MAX_ADAPTATIONS = 3;

const permanent = new WeakSet<object>();

/** An error that repeating the attempt would only repeat (the body's own production failed). */
export function markPermanent<E>(err: E): E {
  if (typeof err === 'object' && err !== null) permanent.add(err);
  return err;
}

export function isRetryable(err: unknown): boolean {
  if (typeof err === 'object' && err !== null && permanent.has(err)) return false;
  if (err instanceof QuotaExhausted) return false;
  if (err instanceof NixregError) return err.exitCode === ExitCode.failure;
  return true;
}

export async function withRetries<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>, hooks: RetryHooks<T>): Promise<T> {
  let adapted = 0;
  const started = Date.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (adapted < MAX_ADAPTATIONS && hooks.adapt?.(err)) {
        adapted++;
        n--;
        continue;
      }
      if (n >= policy.attempts || !isRetryable(err)) throw err;
      const wait = err instanceof RetryLater && err.retryAfterMs !== undefined ? err.retryAfterMs : Math.min(policy.maxDelayMs ?? 30_000, policy.baseDelayMs * n);
      if (policy.maxTimeMs !== undefined && Date.now() - started + wait > policy.maxTimeMs)
        throw new NixregError(`${(err as Error).message}; gave up after ${n} attempts: waiting ${Math.ceil(wait / 1000)} s more would pass --retry-max-time`, ExitCode.failure, { cause: err });
      policy.log?.(hooks.retryLine(err instanceof Error ? err.message : String(err), wait, n + 1, policy.attempts));
      await new Promise((r) => setTimeout(r, wait));
      const there = await hooks.alreadyThere?.();
      if (there !== undefined) return there;
    }
  }
}
