// A child process for test/files.test.ts: saves 100 tensors of 1 MB to argv[2], so that it can be
// killed while its temporary file is being written.
import { writeSafetensors } from '../../lib/io/safetensors.js';

const tensors = Array.from({ length: 100 }, (_, i) => ({
  name: `t${i}`,
  dtype: 'U8' as const,
  shape: [2 ** 20],
  data: new Uint8Array(2 ** 20),
}));
await writeSafetensors(process.argv[2]!, tensors);
