// Peak RSS of `flattenLayers` over one generated layer of N small files in N/1000 directories (bytes streamed,
// output hashed, not kept). Usage: node bench/export-entries.mjs N [MEMORY_ENTRIES]   (after `npm run build`;
// MEMORY_ENTRIES: the path index's in-memory threshold, see src/export/path-index.ts)
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { flattenLayers } from '../dist/src/export/flatten.js';
import { encodePythonPaxHeader, endOfArchive, padTo512 } from '../dist/src/tar/python-pax.js';

const n = Number(process.argv[2] ?? 100000);
const memoryEntries = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
// An async generator, not Readable.from(generator): the latter retains every chunk it ever yielded here (Node 20).
async function* layer() {
  let off = 0;
  const put = (b) => ((off += b.length), b);
  for (let i = 0; i < n; i++) {
    const dir = `usr/share/d${Math.floor(i / 1000)}`;
    if (i % 1000 === 0) yield put(encodePythonPaxHeader({ name: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 0 }));
    const data = Buffer.from(String(i));
    yield put(
      Buffer.concat([
        encodePythonPaxHeader({ name: `${dir}/file-${i}.txt`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: data.length }),
        data,
        Buffer.alloc(padTo512(data.length)),
      ]),
    );
  }
  yield endOfArchive(off);
}
let peak = 0;
const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
let bytes = 0;
const sha = createHash('sha256');
const stats = await flattenLayers(
  { layerCount: 1, openLayer: async () => layer(), layerLabel: () => 'L0', ...(memoryEntries === undefined ? {} : { pathIndex: { memoryEntries } }) },
  new Writable({
    write(c, _e, cb) {
      bytes += c.length;
      sha.update(c);
      cb();
    },
  }),
);
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
console.log(JSON.stringify({ entries: n, outEntries: stats.entries, outBytes: bytes, sha256: sha.digest('hex'), peakRssMiB: Math.round(peak / 2 ** 20) }));
