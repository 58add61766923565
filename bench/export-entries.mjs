// Peak RSS of `flattenLayers` over one generated layer of N small files in N/1000 directories (bytes streamed,
// output discarded). Usage: node bench/export-entries.mjs N   (after `npm run build`)
import { Readable, Writable } from 'node:stream';
import { flattenLayers } from '../dist/src/export/flatten.js';
import { encodePythonPaxHeader, endOfArchive, padTo512 } from '../dist/src/tar/python-pax.js';

const n = Number(process.argv[2] ?? 100000);
function* layer() {
  let off = 0;
  const put = (b) => ((off += b.length), b);
  for (let i = 0; i < n; i++) {
    const dir = `usr/share/d${Math.floor(i / 1000)}`;
    if (i % 1000 === 0) yield put(encodePythonPaxHeader({ name: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 0 }));
    const data = Buffer.from(String(i));
    yield put(Buffer.concat([encodePythonPaxHeader({ name: `${dir}/file-${i}.txt`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: data.length }), data, Buffer.alloc(padTo512(data.length))]));
  }
  yield endOfArchive(off);
}
let peak = 0;
const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
let bytes = 0;
const stats = await flattenLayers(
  { layerCount: 1, openLayer: async () => Readable.from(layer()), layerLabel: () => 'L0' },
  new Writable({ write(c, _e, cb) { bytes += c.length; cb(); } }),
);
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
console.log(JSON.stringify({ entries: n, outEntries: stats.entries, outBytes: bytes, peakRssMiB: Math.round(peak / 2 ** 20) }));
