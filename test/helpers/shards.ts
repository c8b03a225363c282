// WebDataset shards for the data tests: each sample a small PNG (or bytes that are not one) and its caption.
import { createWriteStream } from 'node:fs';

import sharp from 'sharp';
import tar from 'tar-stream';

export interface ShardSample {
  key: string;
  png?: boolean;
  corrupt?: boolean;
  txt?: string;
  json?: string;
}

/** Writes a .tar shard of `samples`, each PNG 20 × 24 of a shade set by its key's length. */
export async function makeShard(file: string, samples: readonly ShardSample[]) {
  const pack = tar.pack();
  const done = new Promise<void>((resolve, reject) =>
    pack.pipe(createWriteStream(file)).on('finish', resolve).on('error', reject),
  );
  for (const s of samples) {
    if (s.png) {
      const shade = s.key.length * 20;
      const png = s.corrupt
        ? Buffer.from('not a png')
        : await sharp({ create: { width: 20, height: 24, channels: 3, background: { r: shade, g: 10, b: 90 } } })
            .png()
            .toBuffer();
      pack.entry({ name: `${s.key}.png` }, png);
    }
    if (s.txt !== undefined) pack.entry({ name: `${s.key}.txt` }, s.txt);
    if (s.json !== undefined) pack.entry({ name: `${s.key}.json` }, s.json);
  }
  pack.finalize();
  await done;
}
