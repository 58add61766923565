import type { Quirks } from './quirks.js';

/**
 * Quay (quay.io).
 * - `application/vnd.docker.image.rootfs.diff.tar` (an uncompressed Docker layer) is not a valid schema2 layer type:
 *   "manifest invalid" (https://github.com/containers/image/issues/1270).
 * - Tag lists paged with opaque Link tokens, 50 per page (https://docs.quay.io/api/swagger/).
 * - Bearer token flow, anonymous pulls of public repositories (https://docs.quay.io/glossary/access-control.html).
 */
export const quay: Quirks = {
  auth: { mode: 'bearer', anonymousPull: true, service: 'quay.io' },
  refuseLayerMediaTypes: ['application/vnd.docker.image.rootfs.diff.tar'],
  options: { pageSize: 50 },
};
