import { NixregError, notFoundError, usageError } from '../errors.js';
import { parseManifest } from '../manifest/manifest.js';
import { parseImageReference } from '../reference/reference.js';
import type { RegistryAccess } from '../registry/access.js';
import type { RegistryClient } from '../registry/client.js';
import { deleteManifest } from '../registry/manifest-delete.js';
import { listManifests } from '../registry/manifest-listing.js';
import { listReferrers } from '../sink/registry/referrers.js';
import { withClient } from './registry-client.js';

export interface GcOptions {
  /** tag globs (`*` any run of characters, `?` one) whose manifests, and all they reach, are kept */
  keep: string[];
  dryRun?: boolean;
  /** on a registry that cannot list untagged manifests: collect only the manifests of tags --keep does not match */
  taggedOnly?: boolean;
  /** called with each manifest before it is deleted (or, with dryRun, instead) */
  onCandidate?: (m: GcManifest) => void;
}

export interface GcManifest {
  digest: string;
  tags: string[];
  mediaType: string;
  /** for an artifact (SBOM, signature, the `sha256-<hex>` referrers index): the manifest it is attached to */
  subject?: string;
}

export interface GcResult {
  repository: string;
  keptTags: string[];
  kept: number;
  deleted: GcManifest[];
  dryRun: boolean;
  /** 'listing' (every manifest, from the registry's manifest listing) or 'tags' (--tagged-only) */
  source: 'listing' | 'tags';
}

export function globToRegExp(glob: string): RegExp {
  if (!glob) throw usageError('--keep takes a tag glob like "v*" or "latest"');
  return new RegExp(
    '^' +
      glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
}

/**
 * The manifest a tag of the referrers tag schema (`sha256-<hex>`) or of cosign (`sha256-<hex>.sig`, `.att`,
 * `.sbom`) is about; undefined for any other tag.
 */
export function attachedTagSubject(tag: string): string | undefined {
  const m = /^sha256-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$/.exec(tag);
  return m ? `sha256:${m[1]}` : undefined;
}

interface Known {
  mediaType: string;
  children: string[];
  subject?: string;
}

/**
 * Delete the manifests of a repository that no kept tag reaches: not through an index's children, not as a
 * referrer (`subject`, the `sha256-<hex>` referrers index, cosign's `.sig` tag) of anything kept, recursively.
 * The referrers of what is deleted are deleted with it. What it deletes is reported before each delete (or only
 * reported, with dryRun). Refuses when the registry cannot list untagged manifests, unless taggedOnly.
 */
export async function gcRepository(repo: string, access: RegistryAccess, o: GcOptions): Promise<GcResult> {
  const r = parseImageReference(repo);
  if (r.tag || r.digest) throw usageError(`gc takes a repository without a tag or digest, got "${repo.slice(0, 200)}"`);
  if (!o.keep.length) throw usageError('gc needs at least one --keep TAG-GLOB (what to keep); it never deletes every manifest');
  const globs = o.keep.map(globToRegExp);
  return withClient(
    r,
    access,
    async (c) => {
      const tags = await c.listTags();
      const keptTags = tags.filter((t) => globs.some((g) => g.test(t)));
      if (!keptTags.length)
        throw notFoundError(
          `no tag of ${r.name} matches --keep ${o.keep.join(' ')} (tags: ${tags.slice(0, 20).join(', ') || 'none'}); refusing to delete every manifest`,
        );
      const known = new Map<string, Known>();
      const read = async (ref: string): Promise<{ digest: string; info: Known } | undefined> => {
        const m = await c.getManifest(ref).catch((e: unknown) => {
          if (e instanceof NixregError && e.exitCode === 4) return undefined; // deleted meanwhile, or a child the registry lacks
          throw e;
        });
        if (!m) return undefined;
        if (known.has(m.digest)) return { digest: m.digest, info: known.get(m.digest)! };
        const p = parseManifest(m.bytes, m.mediaType, `manifest ${r.name}@${m.digest}`);
        const subject = (JSON.parse(m.bytes.toString('utf8')) as { subject?: { digest?: unknown } }).subject?.digest;
        const info: Known = {
          mediaType: m.mediaType,
          children: p.kind === 'index' ? p.manifests.map((d) => d.digest) : [],
          ...(typeof subject === 'string' ? { subject } : {}),
        };
        known.set(m.digest, info);
        return { digest: m.digest, info };
      };
      // everything the kept tags reach through index children
      const reachable = new Set<string>();
      const reach = async (ref: string): Promise<void> => {
        const got = await read(ref);
        if (!got || reachable.has(got.digest)) return;
        reachable.add(got.digest);
        for (const child of got.info.children) await reach(child);
      };
      for (const t of keptTags) await reach(t);

      const listing = await listManifests(c);
      if (!listing && !o.taggedOnly)
        throw new NixregError(
          `${r.registry} offers no listing of a repository's manifests (GET /acr/v1/${r.repository}/_manifests: 404), so gc cannot see untagged ones; ` +
            'pass --tagged-only to collect only the manifests of tags --keep does not match (distribution: run registry garbage-collect --delete-untagged on the server)',
        );
      const tagsOf = new Map<string, string[]>();
      const candidates: string[] = [];
      const addCandidate = (digest: string, tag?: string) => {
        if (!tagsOf.has(digest)) {
          tagsOf.set(digest, []);
          candidates.push(digest);
        }
        if (tag) tagsOf.get(digest)!.push(tag);
      };
      if (listing)
        for (const m of listing) {
          addCandidate(m.digest);
          for (const t of m.tags) addCandidate(m.digest, t);
        }
      else {
        for (const t of tags) {
          const got = keptTags.includes(t) ? undefined : await read(t);
          if (got) addCandidate(got.digest, t);
        }
        // and the children of those, recursively (candidates grows while it is walked)
        for (let i = 0; i < candidates.length; i++) (await read(candidates[i]!))?.info.children.forEach((ch) => addCandidate(ch));
      }
      // referrers of anything kept are kept, and what they reach, until nothing changes: artifacts whose
      // `subject` is kept, and the referrers index and cosign tags (`sha256-<hex>[.sig]`) of kept manifests
      const attachedTags = tags.filter((t) => !keptTags.includes(t) && attachedTagSubject(t));
      for (let changed = true; changed; ) {
        changed = false;
        for (const d of candidates) {
          if (reachable.has(d)) continue;
          const got = await read(d);
          if (got?.info.subject && reachable.has(got.info.subject)) {
            await reach(d);
            changed = true;
          }
        }
        for (const t of attachedTags) {
          if (!reachable.has(attachedTagSubject(t)!)) continue;
          const got = await read(t);
          if (got && !reachable.has(got.digest)) {
            await reach(t);
            changed = true;
          }
        }
      }
      const doomed = candidates.filter((d) => !reachable.has(d));
      if (!listing) {
        // untagged referrers of what goes (a registry with the referrers API lists them) go with it
        for (let i = 0; i < doomed.length; i++) {
          for (const ref of (await listReferrers(c, doomed[i]!)).referrers) {
            if (reachable.has(ref.digest) || tagsOf.has(ref.digest)) continue;
            addCandidate(ref.digest);
            await read(ref.digest);
            doomed.push(ref.digest);
          }
        }
      }
      const subjectOf = (d: string) => known.get(d)?.subject ?? (tagsOf.get(d) ?? []).map(attachedTagSubject).find((x) => x !== undefined);
      // indexes before their children, so a failure half way never leaves an index whose children are gone
      const isIndex = (d: string) => (known.get(d)?.children.length ?? 0) > 0;
      doomed.sort((a, b) => Number(isIndex(b)) - Number(isIndex(a)));
      const deleted: GcManifest[] = [];
      for (const d of doomed) {
        const subject = subjectOf(d);
        const m: GcManifest = { digest: d, tags: tagsOf.get(d) ?? [], mediaType: known.get(d)?.mediaType ?? '', ...(subject ? { subject } : {}) };
        o.onCandidate?.(m);
        if (!o.dryRun) await deleteManifestIfThere(c, d);
        deleted.push(m);
      }
      return { repository: r.name, keptTags, kept: reachable.size, deleted, dryRun: !!o.dryRun, source: listing ? 'listing' : 'tags' };
    },
    { push: true },
  );
}

/** A manifest deleted meanwhile (or with the index that held it) is as good as deleted now. */
async function deleteManifestIfThere(c: RegistryClient, digest: string): Promise<void> {
  try {
    await deleteManifest(c, digest);
  } catch (e) {
    if (!(e instanceof NixregError && e.exitCode === 4)) throw e;
  }
}
