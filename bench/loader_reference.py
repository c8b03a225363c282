"""The loader bench's PyTorch side: torch.utils.data.DataLoader over the same WebDataset shards with the
same workers and transforms as rils's loader. webdataset is not installable here, so the dataset is a
plain tarfile-based IterableDataset (each worker streams its own shards, as webdataset's
split_by_worker does); PIL decodes; torchvision's RandomResizedCrop(224, scale=(0.5, 1), bilinear), then
ToTensor + Normalize (CLIP's mean and std; with --uint8, PILToTensor instead: uint8 batches that the
model normalises, as rils's are); CLIP's BPE tokenizer (bench/clip_tokenizer.py), 77 ids a caption.
Prints one JSON line: images, wall seconds (from the first batch on, and in all), CPU seconds of this
process and its workers while loading (from the loader's start; imports and the vocabulary not counted). Usage: loader_reference.py BPE_VOCAB BATCH WORKERS IMAGES [--uint8] SHARD..."""
import io
import json
import os
import sys
import tarfile
import time

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_tokenizer import SimpleTokenizer  # noqa: E402

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class Shards(IterableDataset):
    def __init__(self, shards, transform, tokenizer):
        self.shards, self.transform, self.tokenizer = shards, transform, tokenizer

    def samples(self, shard):
        """(image bytes, caption) per key, streamed in file order."""
        key, parts = None, {}
        with tarfile.open(shard, "r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = os.path.basename(member.name)
                k, _, ext = base.partition(".")
                k = os.path.join(os.path.dirname(member.name), k)
                if key is not None and k != key:
                    yield parts
                    parts = {}
                key = k
                parts[ext.lower()] = tar.extractfile(member).read()
            if parts:
                yield parts

    def __iter__(self):
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info else (0, 1)
        for shard in self.shards[wid::n]:
            for parts in self.samples(shard):
                image, caption = parts.get("jpg"), parts.get("txt")
                if image is None or caption is None:
                    continue
                pixels = self.transform(Image.open(io.BytesIO(image)).convert("RGB"))
                yield pixels, self.tokenizer(caption.decode("utf-8"))


def main():
    vocab, batch, workers, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    uint8 = "--uint8" in sys.argv
    shards = [a for a in sys.argv[5:] if not a.startswith("--")]
    torch.set_num_threads(1)
    crop = T.RandomResizedCrop(224, scale=(0.5, 1.0), interpolation=T.InterpolationMode.BILINEAR)
    transform = T.Compose([crop, T.PILToTensor()] if uint8 else [crop, T.ToTensor(), T.Normalize(MEAN, STD)])
    loader = DataLoader(Shards(shards, transform, SimpleTokenizer(vocab)), batch_size=batch, num_workers=workers, prefetch_factor=2)
    c0 = os.times()
    t0 = time.perf_counter()
    seen, first = 0, None
    for pixels, tokens in loader:
        seen += pixels.shape[0]
        if first is None:
            first, first_images = time.perf_counter(), seen
        if seen >= images:
            break
    end = time.perf_counter()
    del loader  # joins the workers, so that their CPU time is counted below
    t = os.times()
    print(json.dumps({
        "images": seen, "wall_s": end - t0, "steady_images": seen - first_images, "steady_s": end - first,
        "cpu_s": t.user + t.system + t.children_user + t.children_system - (c0.user + c0.system + c0.children_user + c0.children_system),
        "torch": torch.__version__, "torchvision": torchvision.__version__, "pil": Image.__version__,
    }))


if __name__ == "__main__":
    main()
