#!/usr/bin/python3
"""encode_image timing of the PyTorch reference (../shared/reference/rils_ref.py), eval mode, no grad.
Usage: reference_encode.py PRESET BATCH STEPS THREADS -> JSON on stdout."""
import json, os, resource, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference"))
import torch  # noqa: E402
import rils_ref as R  # noqa: E402

preset, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
cfg = R.PRESETS[preset]
model = R.build_model(cfg, 0).eval()
images = R.random_inputs(cfg, batch, 1)["images"]
times = []
with torch.no_grad():
    model.encode_image(images)
    for _ in range(steps):
        t = time.perf_counter()
        model.encode_image(images)
        times.append(time.perf_counter() - t)
# This machine's matmul peak with the same threads: 2048^3 multiply-adds on each GEMM this LibTorch
# has (OpenBLAS through mm, oneDNN through mkldnn_linear), the best of 3 rounds of 5.
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
gemms = [lambda: torch.mm(a, b)]
if torch.backends.mkldnn.is_available():
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
print(json.dumps({"encode_ms": statistics.median(times) * 1e3, "matmul_gflops": peak,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
