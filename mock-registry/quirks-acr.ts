import type { Quirks } from './quirks.js';

/**
 * Azure Container Registry (*.azurecr.io).
 * - Content-Range on a chunk PATCH must be `<start>-<end>`; `bytes 0-84521/*` is refused with "the Content-Range
 *   header format is invalid" (https://github.com/dotnet/sdk-container-builds/issues/258).
 * - Throttling: "toomanyrequests: Rate exceeded" on manifest PUT, with Retry-After
 *   (https://github.com/containers/common/issues/2494; https://learn.microsoft.com/azure/container-registry/container-registry-skus).
 *   Here once, with a short Retry-After so the test stays quick.
 * - Bearer token flow against /oauth2/token (https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md).
 */
export const acr: Quirks = {
  auth: { mode: 'bearer', service: 'nixreg.azurecr.io' },
  strictContentRange: true,
  faults: [{ kind: 'status', route: 'manifest', method: 'PUT', status: 429, retryAfter: 1, times: 1 }],
};
