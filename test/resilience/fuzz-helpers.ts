import { expect } from 'vitest';
import { NixregError } from '../../src/errors.js';

/** Longest message a parser may produce: inputs are quoted shortened, never whole. */
export const MAX_MESSAGE = 600;

/** Fixed seed so a failure reproduces; runs bounded so every property takes well under a second or two. */
export const FC = { seed: 0x6e6978, numRuns: 300 } as const;

/** The contract of every parser: it returns, or throws NixregError with a short single-line message. */
export function expectNixregErrorOrValue(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expectCleanError(err);
  }
}

export async function expectNixregErrorOrValueAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expectCleanError(err);
  }
}

export function expectCleanError(err: unknown): asserts err is NixregError {
  if (!(err instanceof NixregError)) throw new Error(`expected NixregError, got ${(err as Error)?.name}: ${(err as Error)?.message?.slice(0, 300)}`);
  expect(err.message).not.toMatch(/[\r\n\u2028\u2029]/);
  expect(err.message.length).toBeLessThanOrEqual(MAX_MESSAGE);
  expect(err.message.length).toBeGreaterThan(0);
}

/** Run a promise with a deadline so a hang fails the test instead of the whole run. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (hang)`)), ms);
    }),
  ]);
}
