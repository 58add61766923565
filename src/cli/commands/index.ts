import type { CommandModule } from 'yargs';

/**
 * The command table. Each command's module (and everything it imports: undici, the stream pipeline, ...) is
 * loaded only when that command runs, so `nixreg --help` and small commands start fast and a command never
 * pays for another's dependencies. To add a command: one line here, one file exporting `command`.
 */
export interface CommandEntry {
  name: string;
  describe: string;
  // biome-ignore lint/suspicious/noExplicitAny: each command module has its own argument types; the table holds them all
  load: () => Promise<{ command: CommandModule<any, any> }>;
}

export const commands: CommandEntry[] = [
  { name: 'pull', describe: 'download an image into a docker-archive identical to dockerTools.pullImage (skopeo) output', load: () => import('./pull.js') },
  {
    name: 'prefetch',
    describe: 'nix-prefetch-docker without skopeo: pullImage attributes, streamed hash, per-platform digest',
    load: () => import('./prefetch.js'),
  },
  {
    name: 'push',
    describe: 'push a conf, store paths (--path), an image archive or OCI layout, or a docker:// image to a registry, skipping layers it has',
    load: () => import('./push.js'),
  },
  {
    name: 'copy',
    describe: 'copy an image between registries, docker-archives, OCI layouts and archives (skopeo copy), one platform or --all',
    load: () => import('./copy.js'),
  },
  {
    name: 'stream',
    describe: "write a streamLayeredImage conf's image, byte-identical to nixpkgs' stream_layered_image.py",
    load: () => import('./stream.js'),
  },
  {
    name: 'build',
    describe: 'build a layered image from store paths (closure, layers, customisation layer) like streamLayeredImage',
    load: () => import('./build.js'),
  },
  {
    name: 'layers',
    describe: "split a closure graph into store layers exactly like nixpkgs' dockerTools (auto-layer, popularity)",
    load: () => import('./layers.js'),
  },
  { name: 'inspect', describe: 'show digests, platforms, layers and config of any image source (like skopeo inspect)', load: () => import('./inspect.js') },
  {
    name: 'export',
    describe: "write an image's flattened root filesystem as one tar (docker export / dockerTools.exportImage)",
    load: () => import('./export.js'),
  },
  { name: 'merge', describe: 'combine docker-archives into one (dockerTools.mergeImages), shared layers stored once', load: () => import('./merge.js') },
  { name: 'hash', describe: 'convert a sha256 between nix base32, hex and SRI, or hash a file flat', load: () => import('./hash.js') },
  { name: 'tags', describe: "list a repository's tags, every page", load: () => import('./tags.js') },
  { name: 'digest', describe: "print an image's manifest digest (with --platform, that platform's)", load: () => import('./digest.js') },
  { name: 'tag', describe: 'add tags to an image in the registry (same manifest, no blob traffic)', load: () => import('./tag.js') },
  { name: 'delete', describe: 'delete a manifest by digest or tag', load: () => import('./delete.js') },
  { name: 'login', describe: 'check and store registry credentials where docker, podman and skopeo read them', load: () => import('./login.js') },
  { name: 'logout', describe: "remove a registry's stored credentials", load: () => import('./logout.js') },
  { name: 'index', describe: 'make or extend a multi-platform index from images in the registry (--require-platform)', load: () => import('./index-cmd.js') },
  {
    name: 'sbom',
    describe: 'write a CycloneDX or SPDX SBOM of the image a conf or store paths make (every store path, its layer)',
    load: () => import('./sbom.js'),
  },
  { name: 'referrers', describe: 'list the artifacts (SBOM, provenance, signatures) attached to an image', load: () => import('./referrers.js') },
  { name: 'sign', describe: "sign an image's manifest digest like cosign sign --key (ECDSA P-256, the .sig tag)", load: () => import('./sign.js') },
  { name: 'verify', describe: "check an image's cosign key-based signature against a public key", load: () => import('./verify.js') },
  { name: 'gc', describe: 'delete the manifests of a repository that no kept tag reaches (--keep, --dry-run)', load: () => import('./gc.js') },
];
