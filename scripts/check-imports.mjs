#!/usr/bin/env node
// Import-rule check: imports in src/ point down the layer order of /work/shared/design/architecture.md
//   cli → ops → {sink, source} → image → {nix, registry} → {tar, manifest, compression, reference, digest} → io/util → errors
// no file reaches itself through its imports (a cycle), and no exported type name is defined in two files. Exits non-zero and names every violation.
// ALLOWED lists today's known violations, each "from -> to" (paths under src/); remove an entry once it is fixed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(process.argv[2] ?? 'src');

/** Rank of each top-level folder of src/ (a higher rank may import a lower or equal one, never a higher). */
const RANK = {
  'errors.ts': 0,
  util: 1,
  io: 1,
  types: 1,
  native: 1,
  tar: 2,
  manifest: 2,
  compression: 2,
  reference: 2,
  digest: 2,
  sbom: 2,
  nix: 3,
  registry: 3,
  image: 4,
  source: 5,
  sink: 5,
  oci: 5,
  archive: 5,
  prefetch: 6,
  ops: 6,
  export: 6,
  merge: 6,
  inspect: 6,
  cli: 7,
  'index.ts': 8,
  // Files whose job is another layer's than their folder's, until they move (the longest matching path wins):
  'archive/docker-archive-writer.ts': 2, // skopeo's docker-archive byte format: a codec like tar/go-ustar.ts
  'archive/go-json.ts': 2,
  'archive/legacy-ids.ts': 2,
  'image/pull.ts': 6, // the pull operation: registry source → copy → docker-archive sink
  'nix/from-paths': 5, // the build command's image writer, on top of nix/stream's
  'nix/stream/index.ts': 5, // the stream barrel re-exports output.ts
  'nix/stream/output.ts': 5, // picks the stream command's sink (nixpkgs archive, OCI layout/archive)
};
const rankOf = (file) => {
  const parts = relative(SRC, file).split('/');
  for (let n = parts.length; n > 0; n--) {
    const r = RANK[parts.slice(0, n).join('/')];
    if (r !== undefined) return r;
  }
  return undefined;
};

const ALLOWED = new Set([]);

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s(?:type\s)?[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function importsOf(file) {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith('.')) continue;
    const typeOnly = /^\s*(?:import|export)\s+type\s/.test(m[0].replace(/^\n/, ''));
    const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    const candidates = [target, `${target}.ts`, join(target, 'index.ts')];
    const hit = candidates.find((c) => {
      try {
        return statSync(c).isFile();
      } catch {
        return false;
      }
    });
    if (hit) out.push({ to: hit, typeOnly });
  }
  return out;
}

const topOf = (file) => relative(SRC, file).split('/')[0];
const rel = (file) => relative(SRC, file);

const files = walk(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const problems = [];
const usedAllowed = new Set();

for (const [from, imports] of graph) {
  const rf = rankOf(from);
  if (rf === undefined) problems.push(`${rel(from)}: folder ${topOf(from)}/ has no layer in scripts/check-imports.mjs`);
  for (const { to } of imports) {
    const rt = rankOf(to);
    if (rf === undefined || rt === undefined || rt <= rf) continue;
    const key = `${rel(from)} -> ${rel(to)}`;
    if (ALLOWED.has(key)) {
      usedAllowed.add(key);
      continue;
    }
    problems.push(`upward import: ${key} (${topOf(from)} must not import ${topOf(to)})`);
  }
}

// Cycles among value imports (type-only imports vanish at run time but still tangle the shape: count them too).
const state = new Map();
const stack = [];
function visit(f) {
  state.set(f, 1);
  stack.push(f);
  for (const { to } of graph.get(f) ?? []) {
    if (state.get(to) === 1) {
      const cycle = stack.slice(stack.indexOf(to)).concat(to).map(rel);
      const key = `cycle: ${cycle.join(' -> ')}`;
      if (ALLOWED.has(key)) usedAllowed.add(key);
      else problems.push(key);
    } else if (!state.has(to)) visit(to);
  }
  stack.pop();
  state.set(f, 2);
}
for (const f of files) if (!state.has(f)) visit(f);

// One name, one definition: an exported type, interface or class is defined in one file only.
const definedIn = new Map();
for (const f of files) {
  for (const m of readFileSync(f, 'utf8').matchAll(/^export\s+(?:declare\s+)?(?:abstract\s+)?(?:interface|type|class|enum)\s+([A-Za-z_$][\w$]*)/gm)) {
    const seen = definedIn.get(m[1]);
    if (seen && seen !== f) problems.push(`exported type ${m[1]} is defined twice: ${rel(seen)} and ${rel(f)}`);
    else definedIn.set(m[1], f);
  }
}

for (const key of ALLOWED) if (!usedAllowed.has(key)) problems.push(`stale allow-list entry (fixed now; remove it): ${key}`);

if (problems.length) {
  for (const p of problems) console.error(`check-imports: ${p}`);
  console.error(`check-imports: ${problems.length} violation(s) of the layer order in ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, imports point down, no cycles`);
