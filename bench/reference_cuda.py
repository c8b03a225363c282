"""PyTorch eager baseline on CUDA for scripts/gpu-check.sh: the reference RILS (rils_ref.py) with a
bf16 autocast training step, timed like rils's trainStep, and its MFU.

Usage: reference_cuda.py REF_DIR PRESET BATCH STEPS   (prints one JSON line)
"""
import json
import statistics
import sys
import time

import torch

sys.path.insert(0, sys.argv[1])
import rils_ref as ref  # noqa: E402

# Dense bf16 peak of the chips this project is lent (NVIDIA's datasheets, SXM parts).
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12}


def main():
    preset, batch, steps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    cfg = ref.preset_config(preset)
    model = ref.build_model(cfg, 0).cuda()
    opt = torch.optim.AdamW(ref.param_groups(model, 0.1), lr=1e-4, betas=(0.9, 0.98), eps=1e-8)
    batches = [{k: v.cuda() for k, v in ref.random_inputs(cfg, batch, seed).items()} for seed in range(4)]
    times = []
    for i in range(3 + steps):
        b = batches[i % 4]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(b["images"], b["tokens"], b["noise"])
        loss = ref.rils_loss({k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in out.items()}, cfg)["loss"]
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, cfg.logit_scale_max)
        float(loss)  # the step's result on the host, as rils's trainStep returns its stats
        if i >= 3:
            times.append(time.perf_counter() - t0)
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    flops = 3 * ref.forward_flops(cfg, batch)
    med = statistics.median(times)
    print(json.dumps({
        "device": name, "torch": torch.__version__, "preset": preset, "batch": batch,
        "ms_per_step": med * 1e3, "images_per_s": batch / med, "flops_per_step": flops,
        "peak_bf16_flops": peak, "mfu": (flops / med / peak) if peak else None,
        "max_memory_gb": torch.cuda.max_memory_allocated() / 2**30,
    }))


if __name__ == "__main__":
    main()
