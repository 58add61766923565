import type { Argv } from 'yargs';
import { usageError } from '../errors.js';

/**
 * The bounded-waiting flags shared by pull, prefetch and push (defined once here so the three commands cannot
 * drift): how often a failed request is retried, how long one read may stall, and the total time retries may
 * take. They map onto RegistryClientOptions.retry / timeoutMs.
 */
export interface NetworkArgs {
  retryTimes?: number;
  timeout?: string;
  retryMaxTime?: string;
}

export interface NetworkOptions {
  retry?: { times?: number; totalMs?: number };
  timeoutMs?: number;
}

export function withNetworkFlags<T>(y: Argv<T>): Argv<T> {
  return y
    .option('retry-times', { type: 'number', describe: 'retries of a failed request (429, 5xx, reset, timeout); default 4, 0 = none' })
    .option('timeout', { type: 'string', describe: 'connect / read-stall timeout per request, e.g. 30s, 500ms, 2m (default 60s)' })
    .option('retry-max-time', { type: 'string', describe: 'cap on the total time spent retrying one request, e.g. 2m (default 5m)' }) as Argv<T>;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations ("1m30s", "500ms", "2.5s"); a bare number means seconds (like curl --max-time). */
export function parseDuration(value: string, flag: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== v)
    throw usageError(`${flag} takes a duration like 30s, 500ms or 2m, got "${value.slice(0, 40)}"`);
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0));
}

export function networkOptions(a: NetworkArgs): NetworkOptions {
  const out: NetworkOptions = {};
  const retry: NonNullable<NetworkOptions['retry']> = {};
  if (a.retryTimes !== undefined) {
    if (!Number.isInteger(a.retryTimes) || a.retryTimes < 0) throw usageError('--retry-times must be a whole number, 0 or more');
    retry.times = a.retryTimes;
  }
  if (a.retryMaxTime !== undefined) retry.totalMs = parseDuration(a.retryMaxTime, '--retry-max-time');
  if (a.timeout !== undefined) {
    out.timeoutMs = parseDuration(a.timeout, '--timeout');
    if (out.timeoutMs < 1) throw usageError('--timeout must be more than 0');
  }
  if (Object.keys(retry).length) out.retry = retry;
  return out;
}
