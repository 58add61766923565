import type { Quirks } from './quirks.js';

/**
 * Google Artifact Registry (*-docker.pkg.dev).
 * - "Artifact Registry does not support Docker chunked uploads ... You must use monolithic uploads": a PATCH with
 *   Content-Range, or a second PATCH to one session, is refused; one streamed PATCH then PUT works
 *   (https://cloud.google.com/artifact-registry/docs/docker/pushing-and-pulling;
 *   https://github.com/dotnet/sdk-container-builds/issues/287).
 * - Upload Locations live under another path (/artifacts-uploads/...) with a long opaque token, as absolute URLs
 *   (https://github.com/kitops-ml/kitops/issues/777).
 * - Bearer tokens from the registry's own /v2/token realm (https://github.com/oras-project/oras/issues/157).
 */
export const gar: Quirks = {
  auth: { mode: 'bearer', service: 'us-docker.pkg.dev' },
  monolithicOnly: true,
  uploadPathPrefix: '/artifacts-uploads',
  absoluteLocation: true,
};
