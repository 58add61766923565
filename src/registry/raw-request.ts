import { NixregError } from '../errors.js';
import type { RegistryClient } from './client.js';
import type { HttpRequest, HttpResponse } from './transport.js';

/**
 * The client's authorised request and its error mapping, for resources the client has no method for (manifest
 * DELETE, login's /v2/ check). They are private in TypeScript only: reaching them here keeps client.ts as it is,
 * and the check below turns a renamed method into one clear line instead of a TypeError.
 */
export interface RawRequester {
  send(req: Omit<HttpRequest, 'url'> & { path?: string; url?: string; extraScopes?: string[] }): Promise<HttpResponse>;
  fail(res: HttpResponse, what: string): Promise<never>;
}

export function rawRequester(client: RegistryClient): RawRequester {
  const c = client as unknown as Partial<RawRequester>;
  if (typeof c.send !== 'function' || typeof c.fail !== 'function') throw new NixregError('internal error: RegistryClient has no send/fail (please report)');
  return { send: c.send.bind(client), fail: c.fail.bind(client) };
}
