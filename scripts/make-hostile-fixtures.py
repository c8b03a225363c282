"""Hostile TorchScript archives for test/hostile-weights.test.ts (issue 23), made with the system's
PyTorch (Debian 1.13): /usr/bin/python3 scripts/make-hostile-fixtures.py. Two runs give the same bytes.

- zero-stride.pt: a module whose one parameter 'w' is a [100000, 100000] view of a single float
  (strides 0, 0): 40 GB once made contiguous, from a 2 KB file.
- bad-code.pt: the same archive with its code/__torch__.py made invalid Python (`def forward(((`),
  a valid zip otherwise: LibTorch's TorchScript compiler rejects it (not a c10::Error).
"""
import os
import zipfile

import torch

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'hostile')


class ZeroStride(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1).expand(100000, 100000))

    def forward(self, x):
        return x * self.w[0, 0]


def main():
    os.makedirs(OUT, exist_ok=True)
    good = os.path.join(OUT, 'zero-stride.pt')
    torch.jit.script(ZeroStride()).save(good)
    source = zipfile.ZipFile(good)
    with zipfile.ZipFile(os.path.join(OUT, 'bad-code.pt'), 'w') as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith('code/__torch__.py'):
                data = data.replace(b'def forward(', b'def forward(((')
            out.writestr(info, data)


if __name__ == '__main__':
    main()
