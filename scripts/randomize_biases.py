"""Gives every bias of a weights file seeded N(0, 0.5²) values: the oracle for inference with large
biases (test/parity.test.ts). Fresh weights have zero biases, and training moves them only a little,
so a kernel that mishandled a bias (rils folds the attention's q/k/v biases into its fused CPU
kernel at inference) could pass every other fixture. The text tower's k biases, which a softmax
cancels and training never moves, get values too.

Usage: randomize_biases.py REF_DIR IN OUT  (run by scripts/make-parity-fixtures.sh)
"""
import sys

import torch

sys.path.insert(0, sys.argv[1])
import rils_ref as ref  # noqa: E402

tensors, meta = ref.load_safetensors(sys.argv[2])
generator = torch.Generator().manual_seed(0)
for name, t in tensors.items():
    if name.endswith("bias"):  # Linear/LayerNorm biases, q_bias, v_bias, in_proj_bias
        tensors[name] = 0.5 * torch.randn(t.shape, generator=generator, dtype=t.dtype)
ref.save_safetensors(sys.argv[3], tensors, meta)
