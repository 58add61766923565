import type { Quirks } from './quirks.js';

/**
 * GitHub Container Registry (ghcr.io).
 * - Anonymous pulls of public images still go through the token flow: 401 + Bearer challenge, then an anonymous
 *   token from /token (https://docs.github.com/en/packages/working-with-a-github-packages-registry/working-with-the-container-registry).
 * - A chunk PATCH (Content-Range + Content-Length) over 4 MiB is refused with 416 "the request body is too large and
 *   exceeds the maximum permissible limit of 4.00MiB"; a streamed PATCH passes
 *   (https://github.com/oras-project/rust-oci-client/issues/35, https://github.com/oras-project/rust-oci-client/pull/37).
 * - Tag lists are paged with a Link header (https://github.com/werf/werf/issues/3654); here 100 per page.
 */
export const ghcr: Quirks = {
  auth: { mode: 'bearer', anonymousPull: true, service: 'ghcr.io' },
  maxChunkBytes: 4 << 20,
  options: { pageSize: 100 },
};
