import type { Argv } from 'yargs';
import { usageError } from '../errors.js';

/**
 * The bounded-waiting flags shared by pull, prefetch, push and every docker:// source (defined once here so the
 * commands cannot drift): how often a failed request is retried, how long one read may stall, the total time
 * retries may take, and the largest manifest accepted. They map onto RegistryClientOptions.retry / timeoutMs /
 * maxManifestBytes.
 */
export interface NetworkArgs {
  retryTimes?: number;
  timeout?: string;
  retryMaxTime?: string;
  maxManifestSize?: string;
}

export interface NetworkOptions {
  retry?: { times?: number; totalMs?: number };
  timeoutMs?: number;
  maxManifestBytes?: number;
}

export function withNetworkFlags<T>(y: Argv<T>): Argv<T> {
  return y
    .option('retry-times', { type: 'number', describe: 'retries of a failed request (429, 5xx, reset, timeout); default 4, 0 = none' })
    .option('timeout', { type: 'string', describe: 'connect / read-stall timeout per request, e.g. 30s, 500ms, 2m (default 60s)' })
    .option('retry-max-time', { type: 'string', describe: 'cap on the total time spent retrying one request, e.g. 2m (default 5m)' })
    .option('max-manifest-size', {
      type: 'string',
      describe: 'largest manifest or index accepted, in bytes (k/M/G suffixes; default 4M, like c/image)',
    }) as Argv<T>;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations ("1m30s", "500ms", "2.5s"); a bare number means seconds (like curl --max-time). */
export function parseDuration(value: string, flag: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== v) throw usageError(`${flag} takes a duration like 30s, 500ms or 2m, got "${value.slice(0, 40)}"`);
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0));
}

/** `8M`, `512k`, `1048576`: bytes, with an optional k/M/G (binary, like c/image's limits) suffix. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+)([kmg])?i?b?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] ?? ' ').toLowerCase()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`${flag} must be a size in bytes like 8M or 1048576, got "${value.slice(0, 40)}"`);
  return n;
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
  if (a.maxManifestSize !== undefined) out.maxManifestBytes = parseSize(a.maxManifestSize, '--max-manifest-size');
  if (Object.keys(retry).length) out.retry = retry;
  return out;
}
