/**
 * nixreg as a library: the functions the CLI's commands call, their option and result types, the registry client,
 * and the one error class with its exit codes. Everything else under src/ is internal and may change.
 *
 *   import { pullImage, pushConf, openSource, inspectImage, NixregError } from 'nixreg';
 *
 * Every failure is a NixregError whose message is one line (what failed, where, what to do) and whose `exitCode`
 * is one of ExitCode. Functions that take a progress or log callback print nothing without one.
 */

/** Errors: the one class, its exit codes. */
export { NixregError, ExitCode, type ExitCodeValue } from './errors.js';

/** Registry options shared by every operation (auth, TLS, retries, limits), and the client itself. */
export type { RegistryAccess } from './registry/access.js';
export { RegistryClient, type RegistryClientOptions, type ManifestResponse, type ManifestHead, type BlobGetOptions } from './registry/client.js';
export type { Credentials } from './registry/types.js';
export type { WantedPlatform } from './manifest/platform.js';

/** `nixreg pull`: a docker-archive byte-identical to skopeo's (dockerTools.pullImage), hashed while written. */
export { pullImage, type PullOptions, type PullResult } from './image/pull.js';

/** `nixreg prefetch`: nix-prefetch-docker without skopeo. */
export { prefetch, type PrefetchOptions, type PrefetchRun } from './prefetch/prefetch.js';

/** `nixreg push`: a streamLayeredImage conf, any image source, or a registry → registry copy. */
export { pushConf, type PushConfOptions, type PushResult, type PushedLayer } from './sink/registry/push-conf.js';
export { pushSource, type PushSourceOptions } from './sink/registry/source-push.js';
export { copyRegistryImage, type RegistryCopyOptions } from './sink/registry/registry-copy.js';
export { PushCache } from './sink/registry/push-cache.js';

/** `nixreg copy`: any source (docker://, docker-archive:, oci:, oci-archive:, conf) into a registry, a docker-archive or an OCI layout. */
export { copy, type CopyCommandOptions, type CopyCommandResult } from './ops/copy.js';

/** `nixreg stream` / `nixreg build`: nixpkgs' stream_layered_image output for a conf, or a conf built from flags. */
export {
  loadStreamConf,
  parseStreamConf,
  writeImageOutput,
  LayerCache,
  type StreamConf,
  type StreamOutputOptions,
  type StreamOutputResult,
} from './nix/stream/index.js';
export { runBuild, loadConfig, type RunBuildOptions, type BuildOptions } from './nix/from-paths/index.js';

/** Any image source (docker://, docker-archive, OCI layout or archive, conf): open it, read its manifest and config. */
export { openSource, rawManifest, repositoryTags, type OpenSourceOptions, type SourceImage, type SourceIndex, type SourceKind } from './source/index.js';

/** `nixreg inspect`: skopeo inspect's fields for an opened source. */
export { inspectImage, formatInspect, type InspectResult } from './inspect/inspect.js';

/** `nixreg export`: the flattened root filesystem of an opened source as one tar. */
export { exportImage, type FlattenStats } from './export/index.js';

/** `nixreg merge`: docker-archives combined into one (dockerTools.mergeImages). */
export { mergeImages, type MergeOptions, type MergeResult } from './merge/index.js';

/** Nix hash forms of a sha256 (the `sha256` Buffers in results): base32, SRI, and the parser for any form. */
export { toNix32, toSRI, parseSha256 } from './digest/nixhash.js';
