import type { Quirks } from './quirks.js';

/**
 * Harbor (goharbor).
 * - Upload Locations are absolute URLs carrying `_state` (distribution's form), built from X-Forwarded-Proto
 *   (https://github.com/goharbor/harbor/issues/6405, https://github.com/distribution/distribution/issues/479).
 * - A cross-project mount the token cannot read is refused with 403 instead of falling back to an upload
 *   (https://github.com/containerd/containerd/issues/11709; https://github.com/goharbor/harbor/issues/17097).
 * - Bearer token flow (/service/token), anonymous read of public projects (https://goharbor.io/docs/main/administration/).
 */
export const harbor: Quirks = {
  auth: { mode: 'bearer', anonymousPull: true, service: 'harbor-registry' },
  absoluteLocation: true,
  mountAuthFailure: 403,
};
