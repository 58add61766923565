/**
 * Bytes a stage of a layer chain (download, digest check, decompression, hashing, upload) buffers ahead of the next.
 * With Node's 16 KiB default the stages take turns instead of overlapping: with 256 KiB (and 1 MiB gunzip output
 * chunks) a 512 MiB pull went from 4.3 s to 3.3 s on 2 cores.
 */
export const STREAM_BUFFER = 256 << 10;
