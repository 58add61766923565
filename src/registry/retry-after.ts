/**
 * Retry-After (RFC 9110 section 10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): delay-seconds or
 * an HTTP-date. Returns the wait in milliseconds (0 for a date in the past), undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}
