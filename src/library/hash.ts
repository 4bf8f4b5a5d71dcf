/** Streaming SHA-256 of files: adapters are small, base models are gigabytes (never read whole). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { LorahubError } from '../errors.ts';

export interface FileDigest {
  /** Lower-case hex. */
  sha256: string;
  bytes: number;
}

export async function sha256File(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      const buf = chunk as Buffer;
      hash.update(buf);
      bytes += buf.length;
    }
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new LorahubError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_FILE', `${file}: cannot read (${(cause as Error).message})`, {
      cause,
    });
  }
  return { sha256: hash.digest('hex'), bytes };
}
