import type { Quirks } from './quirks.js';

/**
 * zot (project-zot), default configuration.
 * - OCI only: a Docker schema2 manifest or manifest list PUT is refused (400 "manifest invalid"; 415 before v2.0)
 *   unless `http.compat: ["docker2s2"]` is set (https://github.com/project-zot/zot/issues/724,
 *   https://github.com/project-zot/zot/issues/3104; https://zotregistry.dev/v2.1.0/articles/docker/).
 * - Upload Locations are relative paths; the upload status `Range` with a `bytes=` unit was proposed
 *   (https://github.com/project-zot/zot/pull/1341) and is emulated here.
 * - Default deployments without auth.
 */
export const zot: Quirks = {
  auth: { mode: 'none' },
  refuseDockerManifests: 400,
  rangeUnit: true,
};
