import type { Writable } from 'node:stream';
import type { ImageSink, SinkImage } from '../image/types.js';
import { writeDockerArchive, type ArchiveResult, type RepoTag } from './docker-archive-writer.js';

/** The docker-archive writer as a copy-pipeline sink (skopeo's `docker-archive:` destination). */
export class DockerArchiveSink implements ImageSink<ArchiveResult> {
  constructor(
    private readonly output: Writable,
    private readonly repoTags: readonly RepoTag[],
    private readonly hash = true,
  ) {}
  write(image: SinkImage): Promise<ArchiveResult> {
    return writeDockerArchive(this.output, { ...image, repoTags: this.repoTags, hash: this.hash });
  }
}
