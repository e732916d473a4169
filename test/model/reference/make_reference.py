"""Makes the reference lists beside it from the official model definitions (run by hand,
outside the test suite; nothing of the official code enters the project).

    git clone https://github.com/XuJiacong/PIDNet /tmp/PIDNet  # used: 4c158cf24ce432f0a8cb43364fae38d93cee0dc3
    git clone https://github.com/ydhongHIT/DDRNet /tmp/DDRNet  # used: de0db317c5af4b0946231f475cf74ca4f51b8ac2
    python test/model/reference/make_reference.py /tmp/PIDNet /tmp/DDRNet test/model/reference

``NAME_state_dict.txt``: the official network's ``state_dict()`` names and shapes (with its
training heads, as the official checkpoints hold them), and its parameter counts.
``NAME_tiny_outputs.safetensors``: a tiny official network (widths 2/4, 5 classes, seeded random
weights and BN statistics), an input, and its outputs (every head, eval mode).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

FULL = {  # name: (repository folder, module, constructor call)
    "pidnet_s": ("PIDNet", "models.pidnet",
                 "PIDNet(m=2, n=3, num_classes=19, planes=32, ppm_planes=96, head_planes=128, augment={})"),
    "pidnet_m": ("PIDNet", "models.pidnet",
                 "PIDNet(m=2, n=3, num_classes=19, planes=64, ppm_planes=96, head_planes=128, augment={})"),
    "pidnet_l": ("PIDNet", "models.pidnet",
                 "PIDNet(m=3, n=4, num_classes=19, planes=64, ppm_planes=112, head_planes=256, augment={})"),
    "ddrnet_23_slim": ("DDRNet", "DDRNet_23_slim", "DualResNet(BasicBlock, [2, 2, 2, 2], num_classes=19, "
                       "planes=32, spp_planes=128, head_planes=64, augment={})"),
    "ddrnet_23": ("DDRNet", "DDRNet_23", "DualResNet(BasicBlock, [2, 2, 2, 2], num_classes=19, planes=64, "
                  "spp_planes=128, head_planes=128, augment={})"),
}
TINY = {
    "pidnet_s": ("PIDNet", "models.pidnet",
                 "PIDNet(m=2, n=3, num_classes=5, planes=2, ppm_planes=4, head_planes=4, augment=True)"),
    "pidnet_l": ("PIDNet", "models.pidnet",
                 "PIDNet(m=3, n=4, num_classes=5, planes=2, ppm_planes=4, head_planes=4, augment=True)"),
    "ddrnet_23_slim": ("DDRNet", "DDRNet_23_slim", "DualResNet(BasicBlock, [2, 2, 2, 2], num_classes=5, "
                       "planes=2, spp_planes=4, head_planes=4, augment=True)"),
}


def build(roots: dict[str, Path], repository: str, module: str, call: str) -> torch.nn.Module:
    root = roots[repository]
    sys.path[:0] = [str(root), str(root / "segmentation")]
    namespace: dict = {}
    exec(f"from {module} import *", namespace)  # noqa: S102 - the official definitions, run by hand
    return eval(call, namespace)  # noqa: S307


def origin(roots: dict[str, Path], repository: str, module: str, call: str) -> str:
    """Where the definition comes from: the checkout's commit (or a ``COMMIT`` file beside an export)."""
    root = roots[repository]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    if not commit and (root / "COMMIT").is_file():
        commit = (root / "COMMIT").read_text().strip()
    return f"{repository}@{commit or 'unknown commit'} {module}.{call}"


def randomise(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
            elif isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                module.bias.uniform_(-0.5, 0.5)


def main() -> None:
    pidnet, ddrnet, out = map(Path, sys.argv[1:4])
    roots = {"PIDNet": pidnet, "DDRNet": ddrnet}
    made = f"test/model/reference/make_reference.py with torch {torch.__version__}"
    for name, (repository, module, call) in FULL.items():
        full, inference = (build(roots, repository, module, call.format(aux)) for aux in (True, False))
        inference.eval()
        with torch.no_grad():
            logits = inference(torch.zeros(1, 3, 64, 128))
        count = [sum(p.numel() for p in m.parameters()) for m in (full, inference)]
        lines = [f"# made by {made} from {origin(roots, repository, module, call.format(True))}: "
                 "state_dict() names and shapes",
                 f"# parameters: {count[0]} with the auxiliary heads (augment=True), {count[1]} at inference "
                 f"(augment=False); logits of a 64x128 input: {list(logits.shape[-2:])}"]
        lines += [f"{key} {list(value.shape)}" for key, value in full.state_dict().items()]
        (out / f"{name}_state_dict.txt").write_text("\n".join(lines) + "\n")
    for name, (repository, module, call) in TINY.items():
        torch.manual_seed(0)
        model = build(roots, repository, module, call)
        randomise(model)
        model.eval()
        image = torch.randn(1, 3, 64, 96)
        with torch.no_grad():
            outputs = model(image)
        tensors = {f"state.{key}": value.contiguous() for key, value in model.state_dict().items()}
        tensors["input"] = image
        heads = ["p", "main", "d"] if name.startswith("pidnet") else ["main", "extra"]
        tensors.update({f"output.{head}": output.contiguous() for head, output in zip(heads, outputs)})
        save_file(tensors, str(out / f"{name}_tiny_outputs.safetensors"), metadata={
            "made_by": f"{made} from {origin(roots, repository, module, call)}, seed 0, eval mode"})


if __name__ == "__main__":
    main()
