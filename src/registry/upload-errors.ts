import { NixregError } from '../errors.js';

/** A 429 that waiting will not cure (a used-up quota, or a Retry-After beyond --retry-max-time): never retried. */
export class QuotaExhausted extends NixregError {}

/**
 * A 429 on a request whose body the transport cannot replay (a streamed upload): the caller regenerates the body
 * and tries again, after `retryAfterMs` when the registry said how long to wait (Retry-After).
 */
export class RetryLater extends NixregError {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}
