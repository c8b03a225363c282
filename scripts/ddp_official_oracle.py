"""The official multi-process RILS step, simulated in one process: an oracle for
test/distributed.test.ts (run by scripts/make-parity-fixtures.sh with Debian's python3-torch).

hustvl/RILS (losses.py, SLIP's training loop) on W ranks, each with B/W images: embeddings are
all-gathered with torch.distributed.all_gather (no gradient), the contrastive logits span the
global batch with labels offset by rank·B/W, the sentence prototypes are the gathered captions,
each rank normalises L_rec by its own gated patches, and DDP averages the gradients. Because the
gathered copies are constants, the mean over ranks of each rank's loss has exactly DDP's gradient.

Usage: ddp_official_oracle.py REF_DIR WEIGHTS INPUTS WORLD LR WD STEPS OUT  (prints JSON)
"""
import json
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, sys.argv[1])
import rils_ref as ref  # noqa: E402


def rank_loss(out, rank, world, img_all, txt_all, cfg):
    img = F.normalize(out["image_embed"], dim=-1)
    txt = F.normalize(out["text_embed"], dim=-1)
    b = img.shape[0]
    labels = torch.arange(b) + rank * b
    scale = out["logit_scale"]
    logits_i = scale * img @ txt_all.t()
    logits_t = scale * txt @ img_all.t()
    clip = (F.cross_entropy(logits_i, labels) + F.cross_entropy(logits_t, labels)) / 2
    correct = logits_i.argmax(-1).eq(labels)
    stu = F.normalize(out["masked_pred"][:, 1:], dim=-1)
    tea = F.normalize(out["unmasked_feat"][:, 1:], dim=-1)
    s = stu @ txt_all.t() / cfg.tau_s
    t = (tea @ txt_all.t() / cfg.tau_t).detach()
    kl = (t.softmax(-1) * (t.log_softmax(-1) - s.log_softmax(-1))).sum(-1)
    w = out["mask"] * correct.unsqueeze(-1).float()
    recon = (kl * w).sum() / (w.sum() + 1e-6) * cfg.recon_weight
    return clip + recon, clip, recon, correct.float().sum()


def main():
    ref_dir, weights, inputs, world, lr, wd, steps, out_path = sys.argv[1:9]
    world, steps = int(world), int(steps)
    model = ref.load_model(weights)
    inp = ref.load_inputs(inputs, model.cfg)
    opt = torch.optim.AdamW(ref.param_groups(model, float(wd)), lr=float(lr), betas=(0.9, 0.98), eps=1e-8)
    b = inp["images"].shape[0] // world
    history = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        outs = [model(inp["images"][r * b:(r + 1) * b], inp["tokens"][r * b:(r + 1) * b], inp["noise"][r * b:(r + 1) * b])
                for r in range(world)]
        img_all = torch.cat([F.normalize(o["image_embed"], dim=-1) for o in outs]).detach()
        txt_all = torch.cat([F.normalize(o["text_embed"], dim=-1) for o in outs]).detach()
        per_rank = [rank_loss(o, r, world, img_all, txt_all, model.cfg) for r, o in enumerate(outs)]
        total = sum(p[0] for p in per_rank) / world
        total.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, model.cfg.logit_scale_max)
        history.append({"loss": float(total), "clip_loss": float(sum(p[1] for p in per_rank) / world),
                        "recon_loss": float(sum(p[2] for p in per_rank) / world),
                        "clip_acc": float(sum(p[3] for p in per_rank) / (world * b))})
    ref.save_safetensors(out_path, ref.state_tensors(model), {"format": "rils-ref-v1", "config": ref.config_to_json(model.cfg)})
    print(json.dumps({"steps": history}))


if __name__ == "__main__":
    main()
