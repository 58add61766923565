import { ExitCode, NixregError, systemErrorCode } from '../../errors.js';
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
  /**
   * --retry-max-time: the time one call keeps retrying, waits and repeated attempts included, counted from its
   * first failure. A push passes `budget` instead, which all its blobs share.
   */
  maxTimeMs?: number;
  /** --retry-max-time for a whole push: the one clock every blob's retries run on (see RetryBudget). */
  budget?: RetryBudget;
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
  /** What is being written, for the final error (`blob sha256:… upload to REG/REPO`). */
  what?(): string;
}

const MAX_ADAPTATIONS = 3;

/**
 * --retry-max-time as one budget for a whole push: the wall-clock time during which at least one of its blobs is
 * retrying (from an attempt's failure until the blob is written or given up), so blobs retrying side by side
 * count once, and blobs failing one after the other add up. A retry whose wait would pass the budget is not made.
 */
export class RetryBudget {
  private spent = 0;
  private retrying = 0;
  private since = 0;
  constructor(readonly maxTimeMs: number) {}
  /** A blob's attempt failed: it retries from now on. */
  enter(): void {
    if (this.retrying++ === 0) this.since = Date.now();
  }
  /** The blob is written or given up. */
  leave(): void {
    if (--this.retrying === 0) this.spent += Date.now() - this.since;
  }
  spentMs(): number {
    return this.spent + (this.retrying > 0 ? Date.now() - this.since : 0);
  }
}

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

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);

/** A failed attempt in a word or a status, for the final error's list: `429`, `503`, `reset`, `timeout`, `refused`. */
export function attemptLabel(err: unknown): string {
  if (err instanceof RetryLater) return '429';
  const answered = (err as { status?: unknown } | null)?.status;
  if (typeof answered === 'number') return String(answered);
  const message = err instanceof Error ? err.message : String(err);
  const status = /\bHTTP (\d{3})\b/.exec(message)?.[1];
  if (status) return status;
  const code = systemErrorCode(err);
  if (code && TIMEOUT_CODES.has(code)) return 'timeout';
  if ((code && RESET_CODES.has(code)) || /other side closed|socket hang up|\breset\b/i.test(message)) return 'reset';
  if (code === 'ECONNREFUSED') return 'refused';
  if (/timed? ?out/i.test(message)) return 'timeout';
  return code ? code.toLowerCase() : 'error';
}

/** Labels of failures in the exchange with the registry (an answer's status, or the connection). */
const REGISTRY_FAILURE = /^(\d{3}|reset|timeout|refused)$/;

function gaveUp(hooks: RetryHooks<unknown>, tried: string[], err: unknown, why: string, raise: string): NixregError {
  const n = tried.length;
  const what = hooks.what?.() ?? 'the upload';
  const message = err instanceof Error ? err.message : String(err);
  return new NixregError(
    `${what} failed after ${n} attempt${n === 1 ? '' : 's'} (${tried.join(', ')}): ${message}${why}; check the registry or raise ${raise}`,
    ExitCode.failure,
    { cause: err },
  );
}

export async function withRetries<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>, hooks: RetryHooks<T>): Promise<T> {
  const budget = policy.budget ?? (policy.maxTimeMs !== undefined ? new RetryBudget(policy.maxTimeMs) : undefined);
  let entered = false;
  try {
    return await attemptAll(policy, attempt, hooks, budget, () => {
      if (!entered) budget?.enter();
      entered = true;
    });
  } finally {
    if (entered) budget?.leave();
  }
}

async function attemptAll<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
  hooks: RetryHooks<T>,
  budget: RetryBudget | undefined,
  failed: () => void,
): Promise<T> {
  let adapted = 0;
  const tried: string[] = [];
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (adapted < MAX_ADAPTATIONS && hooks.adapt?.(err)) {
        adapted++;
        n--;
        continue;
      }
      if (!isRetryable(err)) throw err;
      failed();
      tried.push(attemptLabel(err));
      // a registry no attempt could connect to ("cannot reach" says all there is), or a last failure that is not the
      // registry's (the --output file, the layer's own bytes): that error as it is
      if (n >= policy.attempts)
        throw tried.every((t) => t === 'refused') || !REGISTRY_FAILURE.test(tried[tried.length - 1]!)
          ? err
          : gaveUp(hooks as RetryHooks<unknown>, tried, err, '', '--retry-times');
      const wait =
        err instanceof RetryLater && err.retryAfterMs !== undefined ? err.retryAfterMs : Math.min(policy.maxDelayMs ?? 30_000, policy.baseDelayMs * n);
      if (budget && budget.spentMs() + wait > budget.maxTimeMs)
        throw gaveUp(hooks as RetryHooks<unknown>, tried, err, `; waiting ${Math.ceil(wait / 1000)} s more would pass --retry-max-time`, '--retry-max-time');
      policy.log?.(hooks.retryLine(err instanceof Error ? err.message : String(err), wait, n + 1, policy.attempts));
      await new Promise((r) => setTimeout(r, wait));
      const there = await hooks.alreadyThere?.();
      if (there !== undefined) return there;
    }
  }
}
