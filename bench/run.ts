// npm run bench: rils against the PyTorch reference (../shared/reference) on the CPU, side by side in
// one run, same presets, batch sizes and thread count, each case in its own process: PyTorch 2.x (a
// pip torch: MKL, oneDNN) in fp32 and under bf16 autocast, Debian's PyTorch 1.13 in fp32, and rils
// with each addon given, in each precision it can run, with the retrieval gate off (the reference's
// work) and on (the default). Prints a table and writes bench/results.json. See bench/README.md.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const threads = Number(process.env.RILS_BENCH_THREADS ?? os.availableParallelism());
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const flag = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const flags = (name: string) => argv.flatMap((a, i) => (a === name && argv[i + 1] ? [argv[i + 1]!] : []));
// --only NAME runs one case: micro, vit_ti16, vit_s16, data-parallel, clip, onnx or loader.
const only = flag('--only');
// --precision fp32|bf16 runs one precision; --like-for-like only the gate-off rows.
const precisions = (flag('--precision') ? [flag('--precision')!] : ['fp32', 'bf16']) as ('fp32' | 'bf16')[];
const gates = argv.includes('--like-for-like') ? ['no-gate'] : ['no-gate', 'gate'];
// Each side runs `rounds` times, alternating, and keeps its best median (the lowest time): on a
// shared machine noise only ever slows a run down, and alternating gives both sides the same
// chances. Peak RSS and the matmul peak are the largest of the runs.
const rounds = Number(flag('--rounds') ?? (quick ? 1 : 2));
const cases = [
  { preset: 'micro', batch: 64, steps: quick ? 3 : 10 },
  { preset: 'vit_ti16', batch: 32, steps: quick ? 2 : 5 },
  { preset: 'vit_s16', batch: 16, steps: quick ? 2 : 4 },
].filter((c) => !only || only === c.preset);

type Json = Record<string, unknown> & Record<'train_ms' | 'encode_ms' | 'peak_rss_mb', number>;
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').pop()!) as Json;
const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  lastJson(execFileSync(cmd, args, { encoding: 'utf-8', maxBuffer: 1 << 24, env }));

// ---- the two sides ------------------------------------------------------------------------------
/** torch.__version__ of `python`, or undefined where it has no torch. */
function torchVersion(python: string): string | undefined {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf-8', timeout: 60_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const major = (v: string | undefined) => Number(/^(\d+)\./.exec(v ?? '')?.[1] ?? 0);
// PyTorch 2.x: RILS_BENCH_PYTHON (which must have it), else the first of python3 on PATH, a venv
// beside the checkout (../venv-torch2) or in it (.venv) whose torch is >= 2.
function findTorch2(): { python: string; version: string } | undefined {
  const given = process.env.RILS_BENCH_PYTHON;
  if (given) {
    const version = torchVersion(given);
    if (major(version) < 2)
      throw new Error(
        `RILS_BENCH_PYTHON=${given} has ${version ? `torch ${version}` : 'no torch'}; expected torch >= 2`,
      );
    return { python: given, version: version! };
  }
  for (const python of [
    'python3',
    path.resolve(root, '../venv-torch2/bin/python'),
    path.resolve(root, '.venv/bin/python'),
  ]) {
    const version = torchVersion(python);
    if (major(version) >= 2) return { python, version: version! };
  }
  return undefined;
}
const torch2 = findTorch2();
const torch1Version = existsSync('/usr/bin/python3') ? torchVersion('/usr/bin/python3') : undefined;
const torch1 = major(torch1Version) === 1 ? { python: '/usr/bin/python3', version: torch1Version! } : undefined;
if (!torch2) console.log('PyTorch 2.x: not found (set RILS_BENCH_PYTHON to a python with torch >= 2; bench/README.md)');

// The rils addons: each --addon, else the one lib/ loads and the LibTorch 2.x build of
// scripts/test-against.sh and .ci/run (build-torch2/) when there.
const addonPaths: (string | undefined)[] = flags('--addon').map((a) => path.resolve(a));
if (!addonPaths.length) {
  addonPaths.push(process.env.RILS_ADDON);
  const torch2Build = path.join(root, 'build-torch2/Release/rils.node');
  if (existsSync(torch2Build) && process.env.RILS_ADDON !== torch2Build) addonPaths.push(torch2Build);
}
const ours = path.join(here, 'ours.ts');
const addonEnv = (file: string | undefined) => (file ? { ...process.env, RILS_ADDON: file } : process.env);
const addons = addonPaths.map((file) => {
  const info = run(process.execPath, ['--import=tsx', ours, '--info'], addonEnv(file)) as unknown as {
    libtorchVersion: string;
    cpuGemms: string;
    cpuBf16: { available: boolean; reason: string; avx512Bf16: boolean; amxBf16: boolean };
    addon: { file: string };
  };
  return { file, label: `rils/LibTorch ${info.libtorchVersion.replace(/\+.*/, '')}`, info };
});

// ---- the machine --------------------------------------------------------------------------------
const cpuinfo = readFileSync('/proc/cpuinfo', 'utf-8');
const cpuFlags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
const cpuModel = /^model name\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
const bf16Units = cpuFlags.has('avx512_bf16') || cpuFlags.has('amx_bf16');
console.log(
  `CPU: ${cpuModel}, ${os.availableParallelism()} cores, ${threads} threads per side; avx512_bf16 ` +
    `${cpuFlags.has('avx512_bf16') ? 'yes' : 'no'}, amx_bf16 ${cpuFlags.has('amx_bf16') ? 'yes' : 'no'}`,
);
for (const a of addons) console.log(`${a.label} (${a.info.addon.file}): ${a.info.cpuGemms}`);

// ---- the cases ----------------------------------------------------------------------------------
interface Side {
  train_ms: number;
  encode_ms: number;
  peak_rss_mb: number;
  [key: string]: unknown;
}
/** Best of the runs: the lowest times, the highest RSS and matmul peak. */
function best(runs: Json[]): Side {
  const min = (k: string) => Math.min(...runs.map((r) => r[k] as number));
  const max = (k: string) => Math.max(...runs.map((r) => r[k] as number));
  return {
    ...runs[0]!,
    train_ms: min('train_ms'),
    encode_ms: min('encode_ms'),
    peak_rss_mb: max('peak_rss_mb'),
    ...(runs[0]!.matmul_gflops !== undefined ? { matmul_gflops: max('matmul_gflops') } : {}),
  };
}

const rows = [];
const table: string[] = [];
for (const c of cases) {
  const args = [c.preset, String(c.batch), String(c.steps), String(threads)];
  // Every process of this case, run `rounds` times in turn.
  const jobs: { key: string; cmd: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [];
  for (const a of addons) {
    for (const p of precisions) {
      if (p === 'bf16' && !a.info.cpuBf16.available) continue;
      for (const g of gates)
        jobs.push({
          key: `${a.label}|${p}|${g}`,
          cmd: process.execPath,
          args: ['--import=tsx', ours, ...args, p, g],
          env: addonEnv(a.file),
        });
    }
  }
  const reference = path.join(here, 'reference.py');
  for (const p of precisions) {
    if (torch2 && (p === 'fp32' || bf16Units))
      jobs.push({ key: `torch2|${p}`, cmd: torch2.python, args: [reference, ...args, p] });
  }
  if (torch1 && precisions.includes('fp32'))
    jobs.push({ key: 'torch1|fp32', cmd: torch1.python, args: [reference, ...args, 'fp32'] });
  const runs = new Map<string, Json[]>();
  for (let r = 0; r < rounds; r++) {
    for (const j of jobs) runs.set(j.key, [...(runs.get(j.key) ?? []), run(j.cmd, j.args, j.env)]);
  }
  const result = new Map([...runs].map(([k, v]) => [k, best(v)]));
  const imagesPerS = (ms: number) => (c.batch * 1000) / ms;
  for (const p of precisions) {
    const torch = result.get(`torch2|${p}`),
      old = p === 'fp32' ? result.get('torch1|fp32') : undefined;
    for (const g of gates) {
      for (const a of addons) {
        const us = result.get(`${a.label}|${p}|${g}`);
        if (!us) continue;
        const flops = (torch ?? old)?.flops_per_step as number | undefined;
        const encodeFlops = (torch ?? old)?.flops_per_encode as number | undefined;
        const row = {
          preset: c.preset,
          batch: c.batch,
          threads,
          precision: p,
          retrieval_gate: g === 'gate',
          rils: a.label,
          gated_fraction_of_batch: us.gated_fraction,
          rils_gemms: a.info.cpuGemms,
          rils_blas_libs: us.blas_libs,
          train_images_per_s: {
            rils: imagesPerS(us.train_ms),
            pytorch: torch && imagesPerS(torch.train_ms),
            pytorch_1_13: old && imagesPerS(old.train_ms),
          },
          encode_images_per_s: {
            rils: imagesPerS(us.encode_ms),
            pytorch: torch && imagesPerS(torch.encode_ms),
            pytorch_1_13: old && imagesPerS(old.encode_ms),
          },
          peak_rss_mb: { rils: us.peak_rss_mb, pytorch: torch?.peak_rss_mb, pytorch_1_13: old?.peak_rss_mb },
          // Model FLOPs of a full RILS step (the reference's estimate) over the step time, against
          // the matmul peak in this precision (PyTorch 2.x's GEMMs, measured in the same run).
          train_gflops: flops && { rils: flops / us.train_ms / 1e6, pytorch: torch && flops / torch.train_ms / 1e6 },
          encode_gflops: encodeFlops && {
            rils: encodeFlops / us.encode_ms / 1e6,
            pytorch: torch && encodeFlops / torch.encode_ms / 1e6,
          },
          matmul_peak_gflops: torch?.matmul_gflops,
          pytorch: torch && {
            version: torch.torch,
            blas: torch.blas,
            onednn: torch.onednn,
            blas_libs: torch.blas_libs,
          },
          pytorch_1_13: old && { version: old.torch, blas: old.blas, blas_libs: old.blas_libs },
        };
        rows.push(row);
        const x = (
          o: { rils: number; pytorch?: number | undefined; pytorch_1_13?: number | undefined },
          k: 'pytorch' | 'pytorch_1_13' = 'pytorch',
        ) => (o[k] ? `×${(o.rils / o[k]!).toFixed(2)}` : '–');
        const n = (v: number | undefined, d = 1) => (v === undefined ? '–' : v.toFixed(d));
        const work =
          g === 'gate'
            ? `default (gate on: ${((us.gated_fraction as number) * 100).toFixed(0)}% pass)`
            : 'like-for-like (gate off)';
        table.push(
          `| ${c.preset} B${c.batch} | ${p} | ${work} | ${a.label} | ${n(row.train_images_per_s.rils)} / ${n(row.train_images_per_s.pytorch)} ` +
            `| **${x(row.train_images_per_s)}** | ${n(row.encode_images_per_s.rils)} / ${n(row.encode_images_per_s.pytorch)} | **${x(row.encode_images_per_s)}** ` +
            `| ${n(row.peak_rss_mb.rils, 0)} / ${n(row.peak_rss_mb.pytorch, 0)} | ${p === 'fp32' ? `${x(row.train_images_per_s, 'pytorch_1_13')} / ${x(row.encode_images_per_s, 'pytorch_1_13')}` : '–'} |`,
        );
        console.log(table.at(-1));
      }
    }
  }
}
if (rows.length) {
  const p2 = rows.find((r) => r.pytorch)?.pytorch,
    p1 = rows.find((r) => r.pytorch_1_13)?.pytorch_1_13;
  console.log(
    `\nPyTorch 2.x: ${p2 ? `${p2.version} (${torch2!.python}; BLAS ${p2.blas}: ${(p2.blas_libs as string[]).join(', ') || 'linked into libtorch_cpu'}; ${p2.onednn})` : 'not run'}`,
  );
  console.log(
    `PyTorch 1.13: ${p1 ? `${p1.version} (/usr/bin/python3; BLAS ${p1.blas}: ${(p1.blas_libs as string[]).join(', ')})` : 'not run'}`,
  );
  console.log(
    `${threads} threads per side; images/s, the best median of ${rounds} alternating run(s) per side; PyTorch bf16 = torch.autocast('cpu', bfloat16), loss in fp32\n`,
  );
  console.log(
    '| case | precision | rils work | rils build | trainStep img/s rils / PyTorch 2.x | × | encodeImages img/s rils / PyTorch 2.x | × | peak RSS MB rils / PyTorch 2.x | × vs PyTorch 1.13 (train / encode) |',
  );
  console.log('|---|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const line of table) console.log(line);
  // Model GFLOP/s against the same run's matmul peak in that precision (the issue's bound).
  console.log(
    '\n| case | precision | rils build | trainStep GFLOP/s rils / PyTorch | encode GFLOP/s rils / PyTorch | matmul peak GFLOP/s | train / encode of peak |',
  );
  console.log('|---|---|---|---:|---:|---:|---:|');
  for (const r of rows.filter((r) => !r.retrieval_gate && r.train_gflops && r.encode_gflops && r.matmul_peak_gflops)) {
    type Rate = { rils: number; pytorch?: number | undefined };
    const t = r.train_gflops as Rate,
      e = r.encode_gflops as Rate,
      peak = r.matmul_peak_gflops as number;
    const g = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(0));
    console.log(
      `| ${r.preset} B${r.batch} | ${r.precision} | ${r.rils} | ${g(t.rils)} / ${g(t.pytorch)} | ${g(e.rils)} / ${g(e.pytorch)} ` +
        `| ${g(peak)} | ${((100 * t.rils) / peak).toFixed(0)}% / ${((100 * e.rils) / peak).toFixed(0)}% |`,
    );
  }
}

// Data parallel on this machine: micro, global batch 64, as 1 process (every core) and as 2 ranks
// (c10d/Gloo on loopback, half the cores each). On one machine the ranks share its cores, so this
// weighs the collectives plus process-level parallelism against intra-op threads; it is not scaling.
const ddp =
  only && only !== 'data-parallel'
    ? null
    : await (async () => {
        const batch = 64,
          steps = quick ? 3 : 10,
          world = 2;
        const single = run(process.execPath, [
          '--import=tsx',
          ours,
          'micro',
          String(batch),
          String(steps),
          String(threads),
        ]);
        const port = String(29400 + (process.pid % 500));
        const ranks = await Promise.all(
          Array.from(
            { length: world },
            (_, rank) =>
              new Promise<Json>((resolve, reject) => {
                execFile(
                  process.execPath,
                  [
                    '--import=tsx',
                    ours,
                    'micro',
                    String(batch),
                    String(steps),
                    String(Math.max(1, Math.floor(threads / world))),
                  ],
                  {
                    encoding: 'utf-8',
                    env: {
                      ...process.env,
                      RANK: String(rank),
                      WORLD_SIZE: String(world),
                      MASTER_ADDR: '127.0.0.1',
                      MASTER_PORT: port,
                    },
                  },
                  (error, stdout) => (error ? reject(error) : resolve(lastJson(stdout))),
                );
              }),
          ),
        );
        const row = {
          preset: 'micro',
          global_batch: batch,
          train_images_per_s: {
            one_process: (batch * 1000) / single.train_ms,
            two_ranks: (batch * 1000) / Math.max(...ranks.map((r) => r.train_ms)),
          },
        };
        console.log(
          `\ndata parallel micro global batch ${batch}: 1 process ${row.train_images_per_s.one_process.toFixed(1)} img/s, ` +
            `2 ranks ${row.train_images_per_s.two_ranks.toFixed(1)} img/s (×${(row.train_images_per_s.two_ranks / row.train_images_per_s.one_process).toFixed(2)}; ` +
            'the ranks share the same cores: collectives and process-level parallelism against intra-op threads, not scaling)',
        );
        return row;
      })();
// Pretrained CLIP: encode and checkpoint reading against clip_ref.py (bench/clip.ts).
if (!only || only === 'clip') {
  execFileSync(process.execPath, ['--import=tsx', path.join(here, 'clip.ts'), ...(quick ? ['--quick'] : [])], {
    stdio: 'inherit',
  });
}
// rils against onnxruntime-node on rils's ONNX export of the same model (bench/onnx.ts).
if (!only || only === 'onnx') {
  execFileSync(process.execPath, ['--import=tsx', path.join(here, 'onnx.ts'), ...(quick ? ['--quick'] : [])], {
    stdio: 'inherit',
  });
}
// The loader: rils's WebDataset pipeline against PyTorch's DataLoader over the same photo shards
// (bench/loader.ts, bench/loader_reference.py), then fit()'s data wait at the largest preset's step rate.
const loader = only && only !== 'loader' ? null : loaderBench();

function loaderBench() {
  const photos = process.env.RILS_BENCH_PHOTOS ?? path.join(os.tmpdir(), 'rils-bench-photos');
  const script = path.resolve(root, '../shared/data/make-photo-shards.sh');
  if (
    !existsSync(path.join(photos, 'shards')) &&
    spawnSync('bash', [script, photos, '4000'], { stdio: 'inherit' }).status !== 0
  ) {
    console.log(`loader: no photo shards (${script} needs apt access and python3-pil); skipped`);
    return null;
  }
  const shards = readdirSync(path.join(photos, 'shards'))
    .filter((f) => f.endsWith('.tar'))
    .sort()
    .map((f) => path.join(photos, 'shards', f));
  const vision = ['/usr/bin/python3', torch2?.python].find(
    (p) => p && spawnSync(p, ['-c', 'import torchvision, PIL'], { timeout: 60_000 }).status === 0,
  );
  const batch = 64,
    workers = threads,
    images = quick ? 1000 : 3000;
  const jobs = [
    {
      key: 'rils',
      cmd: process.execPath,
      args: ['--import=tsx', path.join(here, 'loader.ts'), String(batch), String(workers), String(images), ...shards],
      env: { ...process.env, UV_THREADPOOL_SIZE: String(workers) },
    },
    ...(vision
      ? ['float', 'uint8'].map((kind) => ({
          key: `torch|${kind}`,
          cmd: vision,
          env: process.env,
          args: [
            path.join(here, 'loader_reference.py'),
            path.join(root, 'assets/bpe_simple_vocab_16e6.txt.gz'),
            String(batch),
            String(workers),
            String(images),
            ...(kind === 'uint8' ? ['--uint8'] : []),
            ...shards,
          ],
        }))
      : []),
  ];
  const runs = new Map<string, Json[]>();
  for (let r = 0; r < rounds; r++)
    for (const j of jobs) runs.set(j.key, [...(runs.get(j.key) ?? []), run(j.cmd, j.args, j.env)]);
  /** The run with the most images per CPU second, and its rates. */
  const rates = (key: string) => {
    const all = runs.get(key)?.map(
      (r) =>
        ({
          ...r,
          per_core: (r.images as number) / (r.cpu_s as number),
          wall: (r.steady_images as number) / (r.steady_s as number),
        }) as Json & { per_core: number; wall: number },
    );
    return all?.sort((a, b) => b.per_core - a.per_core)[0];
  };
  const ours = rates('rils')!,
    float = rates('torch|float'),
    uint8 = rates('torch|uint8');
  const largest = cases.at(-1) ?? { preset: 'vit_s16', batch: 16 };
  const fit = run(
    process.execPath,
    [
      '--import=tsx',
      path.join(here, 'loader-fit.ts'),
      largest.preset,
      String(largest.batch),
      quick ? '3' : '6',
      String(workers),
      String(threads),
      ...shards,
    ],
    { ...process.env, UV_THREADPOOL_SIZE: String(workers) },
  );
  const x = (o?: { per_core: number }) => (o ? `×${(ours.per_core / o.per_core).toFixed(2)}` : '–');
  console.log(
    `\nloader: ${images} photo JPEGs (~500×375, ${path.join(photos, 'shards')}), batch ${batch}, ${workers} workers each side; ` +
      'read, decode, RandomResizedCrop 224 (scale 0.5–1, bilinear), CLIP tokenise (77)',
  );
  console.log('| loader | img/s (wall) | img/s per core (images / CPU s) | rils × |');
  console.log('|---|---:|---:|---:|');
  console.log(
    `| rils WebDatasetSource (uint8 HWC; normalised in the step) | ${ours.wall.toFixed(0)} | ${ours.per_core.toFixed(0)} | – |`,
  );
  if (float)
    console.log(
      `| PyTorch ${String(float.torch)} DataLoader, PIL ${String(float.pil)} + torchvision ${String(float.torchvision)} (ToTensor + Normalize) | ${float.wall.toFixed(0)} | ${float.per_core.toFixed(0)} | **${x(float)}** |`,
    );
  if (uint8)
    console.log(
      `| same, PILToTensor (uint8, as rils's) | ${uint8.wall.toFixed(0)} | ${uint8.per_core.toFixed(0)} | ${x(uint8)} |`,
    );
  if (!vision)
    console.log('PyTorch side: no python with torchvision and PIL (apt-get install python3-torchvision python3-pil)');
  console.log(
    `data wait of fit() on ${largest.preset} B${largest.batch} (${(fit.images_per_s as number).toFixed(1)} img/s, ${fit.steps} steps): ${(100 * (fit.data_wait as number)).toFixed(1)}%`,
  );
  return { images, batch, workers, rils: ours, pytorch: float, pytorch_uint8: uint8, fit };
}
writeFileSync(
  path.join(here, 'results.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      cpu: cpuModel,
      cpu_flags: { avx512_bf16: cpuFlags.has('avx512_bf16'), amx_bf16: cpuFlags.has('amx_bf16') },
      threads,
      rounds,
      rows,
      data_parallel: ddp,
      loader,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nwritten: bench/results.json`);
