"""The PyTorch side of `npm run bench`: the reference RILS (../shared/reference/rils_ref.py) on the
CPU, a training step (forward, RILS loss, backward, AdamW, logit-scale clamp) and encode_image
(inference_mode), timed as bench/ours.ts times rils, in fp32 or under torch.autocast('cpu', bfloat16) with
the loss in fp32 (as bench/reference_cuda.py does on CUDA). Runs with any PyTorch: Debian's 1.13
or a pip torch 2.x (bench/README.md).

Usage: reference.py PRESET BATCH STEPS THREADS [fp32|bf16]   -> one JSON line on stdout
"""
import json
import os
import resource
import statistics
import sys
import time

import torch  # noqa: E402

with open("/proc/self/maps") as maps:  # the BLAS libraries torch maps (numpy brings its own: not those)
    BLAS_LIBS = sorted({os.path.basename(l.split()[-1]) for l in maps
                        if any(k in l for k in ("blas", "lapack", "mkl")) and "numpy" not in l})
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference"))
import rils_ref as R  # noqa: E402


def median_ms(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def matmul_peak(dtype):
    """This machine's GEMM peak in `dtype` with the same threads: 2048^3 multiply-adds on each GEMM
    this PyTorch has (its BLAS through mm, oneDNN through mkldnn_linear), the best of 3 rounds of 5."""
    a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
    gemms = [lambda: torch.mm(a, b)]
    if dtype == torch.float32 and torch.backends.mkldnn.is_available():
        a_dnnl = a.to_mkldnn()
        gemms.append(lambda: torch._C._nn.mkldnn_linear(a_dnnl, b, None))
    peak = 0.0
    for gemm in gemms:
        gemm()
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(5):
                gemm()
            peak = max(peak, 5 * 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9)
    return peak


def blas():
    """The BLAS this PyTorch was built with, its oneDNN, and the BLAS libraries torch maps (none
    where the BLAS is linked into libtorch_cpu, as MKL is in the pip wheels)."""
    info = torch.__config__.show()
    name = info.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in info else "unknown"
    onednn = next((l.strip(" -") for l in info.splitlines() if "MKL-DNN" in l or "oneDNN" in l), "none")
    return {"blas": name, "onednn": onednn, "blas_libs": BLAS_LIBS}


def main():
    preset, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    bf16 = (sys.argv[5] if len(sys.argv) > 5 else "fp32") == "bf16"
    torch.set_num_threads(threads)
    R._openblas_info(threads)  # a pthread OpenBLAS (Debian's) ignores set_num_threads
    cfg = R.PRESETS[preset]
    model = R.build_model(cfg, 0)
    trainer = R.Trainer(model, lr=1e-4, wd=0.1)
    batches = [R.random_inputs(cfg, batch, seed) for seed in range(1, 5)]  # four, in turn, as ours.ts
    calls = iter(range(1 << 30))

    def train_step():
        b = batches[next(calls) % 4]
        model.train()
        trainer.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(b["images"], b["tokens"], b["noise"])
        out = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in out.items()}
        loss = R.rils_loss(out, cfg, **trainer.flags)["loss"]
        loss.backward()
        trainer.optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, cfg.logit_scale_max)
        loss.detach().item()  # the step's result on the host, as trainStep returns its stats

    train_ms = median_ms(train_step, 2, steps)
    model.eval()
    images = batches[0]["images"]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        encode_ms = median_ms(lambda: model.encode_image(images).float(), 1, steps)
    flops = 3 * R.forward_flops(cfg, batch)
    # encode_image: the patch embedding, the full-image encoder's blocks, the projection (as forward_flops counts them)
    D, N, r = cfg.vision_width, cfg.num_patches, cfg.mlp_ratio
    encode_flops = batch * (2 * N * cfg.in_chans * cfg.patch_size ** 2 * D
                            + cfg.vision_depth * (1 + N) * ((8 + 4 * r) * D * D + 4 * (1 + N) * D) + 2 * D * cfg.embed_dim)
    print(json.dumps({
        "torch": torch.__version__, "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads(),
        "train_ms": train_ms, "encode_ms": encode_ms, "flops_per_step": flops, "flops_per_encode": encode_flops,
        "matmul_gflops": matmul_peak(torch.bfloat16 if bf16 else torch.float32),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, **blas(),
    }))


if __name__ == "__main__":
    main()
