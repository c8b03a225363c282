// A WebDataset shard server on 127.0.0.1 for the tests, with faults to inject per path: a reset
// connection after some bytes, an HTTP status, a stall, a redirect, ignoring Range. It serves the files
// of one folder (with Range), logs every request, and closes every connection when closed.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';

export interface Fault {
  /** Requests this fault applies to (the first ones after it is set); default every request. */
  times?: number;
  /** Send this many bytes of the body, then destroy the connection. */
  resetAfter?: number;
  /** Answer with this status and no shard. */
  status?: number;
  /** Send this many bytes, then nothing more (the connection stays open). */
  stallAfter?: number;
  /** Answer 302 to this path. */
  redirect?: string;
  /** Answer 200 with the whole file even to a Range request. */
  ignoreRange?: boolean;
}

export interface Logged {
  path: string;
  range: string | undefined;
  status: number;
  /** Whether the body was sent to its end. */
  complete: boolean;
}

export interface ShardServer {
  url: (name: string) => string;
  faults: Map<string, Fault>;
  log: Logged[];
  close(): Promise<void>;
}

export async function startShardServer(dir: string): Promise<ShardServer> {
  const faults = new Map<string, Fault>();
  const applied = new WeakMap<Fault, number>(); // requests each fault has met since it was set
  const log: Logged[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1));
    const f = faults.get(name);
    const n = f ? (applied.get(f) ?? 0) + 1 : 0;
    if (f) applied.set(f, n);
    const fault = f && (f.times === undefined || n <= f.times) ? f : undefined;
    const entry: Logged = { path: name, range: req.headers.range, status: 200, complete: false };
    log.push(entry);
    if (fault?.redirect) return void res.writeHead((entry.status = 302), { location: `/${fault.redirect}` }).end();
    if (fault?.status) return void res.writeHead((entry.status = fault.status)).end('fault');
    let body: Buffer;
    try {
      body = readFileSync(path.join(dir, name));
    } catch {
      return void res.writeHead((entry.status = 404)).end('not found');
    }
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (start > 0 && !fault?.ignoreRange) {
      entry.status = 206;
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      body = body.subarray(start);
    } else res.writeHead(200, { 'content-length': body.length });
    const cut = fault?.resetAfter ?? fault?.stallAfter;
    if (cut === undefined) return void res.end(body, () => (entry.complete = true));
    res.write(body.subarray(0, cut), () => {
      if (fault!.resetAfter !== undefined) setTimeout(() => req.socket.destroy(), 20);
    });
  });
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    faults,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
