/** Response headers as undici gives them. */
type Headers = Record<string, string | string[] | undefined>;

/**
 * A 429 that waiting a few seconds will not cure: a quota (Docker Hub's pull rate limit announces
 * `RateLimit-Remaining: 0;w=<window seconds>`, https://docs.docker.com/docker-hub/usage/pulls/) or a Retry-After
 * longer than the retry budget left. Returns the one-line reason, or undefined when a retry may succeed.
 */
export function quotaExhausted(
  headers: Headers,
  host: string,
  retryAfterMs: number | undefined,
  budgetLeftMs: number,
  nowMs: number = Date.now(),
): string | undefined {
  const header = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const until = retryAfterMs !== undefined ? ` until ${new Date(nowMs + retryAfterMs).toISOString()}` : '';
  const remaining = header('ratelimit-remaining');
  if (remaining !== undefined && /^\s*0\s*(;|$)/.test(remaining)) {
    const limit = /^\s*(\d+)\s*(?:;\s*w=(\d+))?/.exec(header('ratelimit-limit') ?? '');
    const what = limit ? `${limit[1]} requests${limit[2] ? ` per ${formatWindow(Number(limit[2]))}` : ''}` : 'its request quota';
    return `${host} answered HTTP 429: the rate limit (${what}) is used up; log in (docker login, or --creds) for a higher limit, or wait${until || ' for the window to reset'}`;
  }
  if (retryAfterMs !== undefined && retryAfterMs > budgetLeftMs)
    return `${host} answered HTTP 429 and asks to wait ${Math.ceil(retryAfterMs / 1000)} s (Retry-After), more than --retry-max-time leaves; try again${until}, or raise --retry-max-time`;
  return undefined;
}

function formatWindow(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
