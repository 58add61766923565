import type { Quirks } from './quirks.js';

/**
 * Amazon Elastic Container Registry (*.dkr.ecr.*.amazonaws.com).
 * - Basic auth with `AWS:<token from get-login-password>` on every request
 *   (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html).
 * - A chunk PATCH answers 201, not 202 (https://github.com/aws/containers-roadmap/issues/2831).
 * - Chunks under 5 MiB (but the last) are refused and the minimum is not advertised: LayerPartTooSmallException
 *   (https://github.com/dotnet/sdk-container-builds/issues/424; https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UploadLayerPart.html).
 * - Manifest HEAD answers without Docker-Content-Digest, so clients fall back to a GET
 *   (https://github.com/aws/containers-roadmap/issues/1164).
 */
export const ecr: Quirks = {
  auth: { mode: 'basic' },
  patchStatus: 201,
  options: { chunkMinLength: 5 << 20, enforceChunkMinLength: true },
  hideChunkMinLength: true,
  omitDigestHeader: ['manifest-head'],
};
