/**
 * One reader of WebDataset shards (a "worker" in webdataset's terms): each epoch it reads its own
 * share of the shards (the lanes of a source split every epoch's shard order between them, so no
 * two read the same shard in an epoch), or, resampled, shards drawn with replacement; its samples
 * pass a seeded shuffle buffer. Its state (epoch, shard, sample, generators, and which samples the
 * buffer holds) is JSON, and a lane restored from it continues exactly: the buffered samples are read
 * again from their shards (up to one shard's worth per distinct shard in the buffer).
 * @internal
 * @module
 */
import { RilsInputError } from '../errors.js';
import { Random } from './augment.js';
import type { ShardReadCounts, ShardReadOptions } from './shard-stream.js';
import { shardSamples } from './webdataset.js';
import type { RawSample } from './webdataset.js';

/** A usable sample (image and caption) and where it came from. */
export interface LaneSample {
  /** Index of its shard in the source's list. */
  shard: number;
  /** Its place among its shard's samples (unusable ones counted). */
  ordinal: number;
  key: string;
  image: Buffer;
  caption: string;
}

/** A lane's position, as saved in checkpoints. */
export interface LaneState {
  /** Unsampled: the epoch; resampled: 0. */
  epoch: number;
  /** Unsampled: the place in this epoch's share; resampled: shards drawn so far. */
  shard: number;
  /** The shard being read (an index of the source's list). */
  current: number;
  /** Samples of `current` already read. */
  sample: number;
  /** The shuffle and crop generator. */
  rng: number;
  /** The generator drawing shards (resampled). */
  pick: number;
  /** The shuffle buffer's samples, as [shard, ordinal]. */
  buffer: [number, number][];
}

/** What lanes count (shared by the lanes of a source). */
export interface LaneCounts extends ShardReadCounts {
  /** Samples without an image or a caption (skipped). */
  skipped: number;
  /** Shards that could not be read to their end, each time. */
  skippedShards: number;
  /** Why the last of them could not. */
  lastShardError: string | undefined;
}

/** Options of a lane. */
export interface LaneOptions {
  shards: readonly string[];
  lane: number;
  lanes: number;
  seed: number;
  shuffle: number;
  resampled: boolean;
  read: Required<ShardReadOptions>;
  onError: 'skip' | 'throw';
}

/** A 32-bit seed from a seed and two numbers. */
function mix(seed: number, a: number, b: number): number {
  const r = new Random((seed ^ Math.imul(a + 1, 0x9e3779b1) ^ Math.imul(b + 1, 0x85ebca77)) >>> 0);
  r.next();
  return r.int(2 ** 32);
}

export class ShardLane {
  readonly #o: LaneOptions;
  readonly #counts: LaneCounts;
  #state: LaneState;
  #rng: Random;
  #pick: Random;
  #buffer: LaneSample[] = [];
  #samples: AsyncGenerator<RawSample> | null = null;
  #share: { epoch: number; shards: number[] } = { epoch: -1, shards: [] };
  /** Shards in a row that gave no usable sample. */
  #barren = 0;

  constructor(options: LaneOptions, counts: LaneCounts) {
    this.#o = options;
    this.#counts = counts;
    this.#rng = new Random(mix(options.seed, options.lane, 0));
    this.#pick = new Random(mix(options.seed, options.lane, 1));
    this.#state = { epoch: 0, shard: 0, current: 0, sample: 0, rng: 0, pick: 0, buffer: [] };
    this.#state.current = options.resampled ? this.#pick.int(options.shards.length) : this.#shareOf(0)[0]!;
  }

  /** This lane's shards of `epoch`: every lanes-th of the epoch's seeded order. */
  #shareOf(epoch: number): number[] {
    if (this.#share.epoch !== epoch) {
      const order = new Random(mix(this.#o.seed, epoch, 2)).shuffle([...this.#o.shards.keys()]);
      this.#share = { epoch, shards: order.filter((_, i) => i % this.#o.lanes === this.#o.lane) };
    }
    return this.#share.shards;
  }

  /** A generator of the crop boxes' generators. */
  get rng(): Random {
    return this.#rng;
  }

  /** The position now, as JSON. */
  state(): LaneState {
    return {
      ...this.#state,
      rng: this.#rng.state,
      pick: this.#pick.state,
      buffer: this.#buffer.map((s) => [s.shard, s.ordinal]),
    };
  }

  /** Moves to the next shard (the next of the share, or a new draw). */
  #advance(): void {
    const s = this.#state;
    this.#samples = null;
    s.sample = 0;
    s.shard++;
    if (this.#o.resampled) s.current = this.#pick.int(this.#o.shards.length);
    else {
      if (s.shard >= this.#shareOf(s.epoch).length) {
        s.epoch++;
        s.shard = 0;
      }
      s.current = this.#shareOf(s.epoch)[s.shard]!;
    }
    const limit = 2 * (this.#o.resampled ? this.#o.shards.length : this.#shareOf(s.epoch).length);
    if (++this.#barren > limit) {
      const c = this.#counts;
      const why =
        c.lastShardError === undefined ? '' : ` (${c.skippedShards} unreadable; the last: ${c.lastShardError})`;
      throw new RilsInputError(`The shards hold no usable sample${why}`);
    }
  }

  /** The next raw sample of the current shard (opened at the saved place first); done at its end or at damage that is skipped. */
  async #read(): Promise<IteratorResult<RawSample>> {
    try {
      if (!this.#samples) {
        this.#samples = shardSamples(this.#o.shards[this.#state.current]!, this.#o.read, this.#counts);
        for (let i = 0; i < this.#state.sample; i++) if ((await this.#samples.next()).done) break; // resume inside a shard
      }
      return await this.#samples.next();
    } catch (error) {
      if (this.#o.onError === 'throw') throw error;
      this.#counts.skippedShards++;
      this.#counts.lastShardError = (error as Error).message;
      return { done: true, value: undefined };
    }
  }

  /** The next sample with an image and a caption, across shards and epochs. */
  async #nextUsable(): Promise<LaneSample> {
    for (;;) {
      const r = await this.#read();
      if (r.done) {
        this.#advance();
        continue;
      }
      const ordinal = this.#state.sample++;
      const { key, image, caption } = r.value;
      if (!image || !caption) {
        this.#counts.skipped++;
        continue;
      }
      this.#barren = 0;
      return { shard: this.#state.current, ordinal, key, image, caption };
    }
  }

  /** The next sample through the shuffle buffer (filled to its size first). */
  async next(): Promise<LaneSample> {
    if (this.#o.shuffle === 0) return this.#nextUsable();
    while (this.#buffer.length < this.#o.shuffle) this.#buffer.push(await this.#nextUsable());
    const k = this.#rng.int(this.#buffer.length);
    const out = this.#buffer[k]!;
    this.#buffer[k] = this.#buffer[this.#buffer.length - 1]!;
    this.#buffer.pop();
    return out;
  }

  /** Ends the shard being read (its request, its command). */
  close(): void {
    void this.#samples?.return(undefined);
    this.#samples = null;
  }

  /** Goes back to a saved state, reading the buffered samples again from their shards. */
  async restore(state: LaneState): Promise<void> {
    this.close();
    this.#state = { ...state, buffer: [] };
    this.#rng.state = state.rng;
    this.#pick.state = state.pick;
    this.#barren = 0;
    this.#buffer = await this.#reread(state.buffer);
  }

  /** The samples `ids` name, in that order; those that cannot be read again are counted as skipped. */
  async #reread(ids: readonly [number, number][]): Promise<LaneSample[]> {
    const found = new Map<string, LaneSample>();
    for (const shard of new Set(ids.map(([s]) => s))) {
      const wanted = new Set(ids.filter(([s]) => s === shard).map(([, o]) => o));
      const last = Math.max(...wanted);
      let ordinal = 0;
      try {
        for await (const s of shardSamples(this.#o.shards[shard]!, this.#o.read, this.#counts)) {
          if (wanted.has(ordinal) && s.image && s.caption)
            found.set(`${shard}:${ordinal}`, { shard, ordinal, key: s.key, image: s.image, caption: s.caption });
          if (++ordinal > last) break;
        }
      } catch (error) {
        if (this.#o.onError === 'throw') throw error;
        this.#counts.skippedShards++;
        this.#counts.lastShardError = (error as Error).message;
      }
    }
    const buffer = ids.flatMap(([s, o]) => found.get(`${s}:${o}`) ?? []);
    this.#counts.skipped += ids.length - buffer.length;
    return buffer;
  }
}

/** Checks a saved lane state against `shards` shards. @internal */
export function isLaneState(value: unknown, shards: number): value is LaneState {
  const s = value as Partial<LaneState> | null;
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  return (
    !!s &&
    int(s.epoch) &&
    int(s.shard) &&
    int(s.current) &&
    s.current! < shards &&
    int(s.sample) &&
    typeof s.rng === 'number' &&
    typeof s.pick === 'number' &&
    Array.isArray(s.buffer) &&
    s.buffer.every((b) => Array.isArray(b) && b.length === 2 && int(b[0]) && b[0] < shards && int(b[1]))
  );
}
