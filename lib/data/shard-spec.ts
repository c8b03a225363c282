/**
 * The one reading of a WebDataset spec (training and retrieval alike): which strings name shards, and
 * the shards they name. A spec is one or more `::`-joined parts, each a local path, an `http://` or
 * `https://` URL, or `pipe:COMMAND` (its standard output is the tar stream, as open_clip reads
 * `pipe:aws s3 cp s3://bucket/x.tar -`); braces expand as in bash (`{00000..01023}` keeps the zero
 * padding; several ranges and `{a,b}` lists multiply). Parts that are not `pipe:` may also be
 * comma-separated lists (commas inside braces are brace lists).
 * @module
 */
import { expand } from 'brace-expansion';

import { RilsInputError } from '../errors.js';

/** Shards one spec may name (brace-expansion's own limit). */
export const MAX_SHARDS = 100_000;

/** The kind of place a shard is read from. */
export type ShardKind = 'file' | 'http' | 'pipe';

/** Where one shard URL is read from. @internal */
export function shardKind(url: string): ShardKind {
  if (url.startsWith('pipe:')) return 'pipe';
  if (/^https?:\/\//i.test(url)) return 'http';
  return 'file';
}

/** Splits at commas outside braces. */
function splitCommas(part: string): string[] {
  const out: string[] = [];
  let depth = 0,
    start = 0;
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === '{') depth++;
    else if (c === '}') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      out.push(part.slice(start, i));
      start = i + 1;
    }
  }
  out.push(part.slice(start));
  return out;
}

/** Whether a pattern (before brace expansion) names shards. */
function namesShards(pattern: string): boolean {
  return shardKind(pattern) !== 'file' || /\.tar\}?$/.test(pattern);
}

/**
 * The shard URLs a dataset spec names, in order (duplicates kept: a shard listed twice is read
 * twice an epoch); undefined for a spec that names no shards (a folder, an index file, `mnist`).
 *
 * @example
 * ```ts
 * shardUrls('https://host/cc12m-{00000..00002}.tar::pipe:cat /data/extra.tar');
 * // ['https://host/cc12m-00000.tar', …, 'https://host/cc12m-00002.tar', 'pipe:cat /data/extra.tar']
 * ```
 */
export function shardUrls(spec: string): string[] | undefined {
  const parts = spec.split('::').map((p) => p.trim());
  const patterns = parts
    .flatMap((p) => (p.startsWith('pipe:') ? [p] : splitCommas(p).map((s) => s.trim())))
    .filter(Boolean);
  if (patterns.length === 0 || !patterns.some(namesShards)) return undefined;
  const urls: string[] = [];
  for (const pattern of patterns) {
    if (!namesShards(pattern)) {
      throw new RilsInputError(
        `Expected each part of a shard list to be a .tar path, an http(s):// URL or pipe:COMMAND but received ${JSON.stringify(pattern)}`,
      );
    }
    urls.push(...expand(pattern, { max: MAX_SHARDS + 1 }));
    if (urls.length > MAX_SHARDS)
      throw new RilsInputError(
        `Expected at most ${MAX_SHARDS} shards in a spec but ${JSON.stringify(spec.slice(0, 80))} names more`,
      );
  }
  return urls;
}
