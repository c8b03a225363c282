#!/usr/bin/python3
"""clip_ref (../shared/reference/clip_ref.py) encode_image timing and the time and peak RSS of reading
a checkpoint, for bench/clip.ts.
Usage: reference_clip.py encode WEIGHTS BATCH STEPS THREADS | load WEIGHTS THREADS -> JSON on stdout."""
import json, os, resource, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference"))
import torch  # noqa: E402
import clip_ref as C  # noqa: E402

mode, weights = sys.argv[1], sys.argv[2]
torch.set_num_threads(int(sys.argv[-1]))
t = time.perf_counter()
model = C.read_weights(weights, None)
load_s = time.perf_counter() - t
out = {"load_s": load_s, "torch": torch.__version__}
if mode == "encode":
    batch, steps = int(sys.argv[3]), int(sys.argv[4])
    size = model.cfg.image_size
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    times = []
    with torch.no_grad():
        model.encode_image(images)
        for _ in range(steps):
            t = time.perf_counter()
            model.encode_image(images)
            times.append(time.perf_counter() - t)
    out["encode_ms"] = statistics.median(times) * 1e3
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(out))
