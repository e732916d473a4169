"""Train a small PIDNet-S briefly on synthetic street scenes: trained weights (BN statistics and
all) for the fp16/bf16 checks of PIDNet (test/runtime/test_precision_networks.py), not a model
to use. About 10 minutes on a busy 2-core CPU:

    .venv/bin/python scripts/train_small_pidnet.py test/runtime/data/pidnet_s_small_synthetic.safetensors

PIDNet-S at width 8 (official 32), 128x256 crops of ``generate_scene`` (seeds 0..), the official
pre-processing (RGB, ImageNet mean/std), cross entropy on the main head plus 0.4 of it on the P
head (the official weights; the boundary head gets no label here), SGD with momentum, poly decay.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from icnet_ros.model import pidnet
from icnet_ros.synthetic.street_scenes import generate_scene
from icnet_ros.weights.labels import CITYSCAPES, IGNORE_LABEL
from icnet_ros.weights.official_checkpoints import OFFICIAL_PREPROCESSING
from icnet_ros.weights.preprocessing import Preprocessing
from icnet_ros.weights.weight_file import WeightsMetadata, save_weights

WIDTHS = {"planes": 8, "ppm_planes": 16, "head_planes": 32}
SIZE = (128, 256)
SCENES = 240
HELD_OUT_SEED = 1_000_000


def batches(images: torch.Tensor, labels: torch.Tensor, batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    while True:
        for index in torch.randperm(len(images), generator=generator).split(batch):
            if len(index) == batch:
                yield images[index], labels[index]


def normalised(rgb: np.ndarray) -> torch.Tensor:
    prep = OFFICIAL_PREPROCESSING
    x = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--iterations", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a shared CPU: one thread is as fast and leaves the other core
    scenes = [generate_scene(seed, *SIZE) for seed in range(SCENES)]
    images = normalised([rgb for rgb, _ in scenes])
    labels = torch.from_numpy(np.stack([label for _, label in scenes])).long()
    model = pidnet(variant="s", **WIDTHS).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    started = time.perf_counter()
    for iteration, (x, y) in zip(range(args.iterations), batches(images, labels, args.batch, 0)):
        for group in optimizer.param_groups:
            group["lr"] = 0.02 * (1 - iteration / args.iterations) ** 0.9
        outputs = model(x)
        loss = sum(weight * F.cross_entropy(F.interpolate(outputs[head], size=SIZE, mode="bilinear",
                                                          align_corners=False), y, ignore_index=IGNORE_LABEL)
                   for head, weight in (("main", 1.0), ("p", 0.4)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration % 50 == 0:
            print(f"iteration {iteration}: loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval()
    held_out = [generate_scene(HELD_OUT_SEED + i, *SIZE) for i in range(20)]
    with torch.no_grad():
        predicted = model(normalised([rgb for rgb, _ in held_out])).argmax(1).numpy()
    truth = np.stack([label for _, label in held_out])
    valid = truth != IGNORE_LABEL
    accuracy = float((predicted[valid] == truth[valid]).mean())
    print(f"held-out pixel accuracy {100 * accuracy:.1f} %")
    prep = OFFICIAL_PREPROCESSING
    metadata = WeightsMetadata({}, CITYSCAPES, Preprocessing(SIZE, prep.channel_order, prep.mean, prep.std), {
        "source": "scripts/train_small_pidnet.py: PIDNet-S at width 8 trained briefly on synthetic street scenes "
                  "(for the fp16/bf16 checks, not a model to use)",
        "iterations": args.iterations, "batch": args.batch, "scenes": f"generate_scene seeds 0..{SCENES - 1}"},
        {"heldout_pixel_accuracy": accuracy, "heldout_set": f"20 scenes, seeds {HELD_OUT_SEED}.., {SIZE[0]}x{SIZE[1]}"})
    save_weights(args.output, model, metadata)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
