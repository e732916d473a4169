"""The GPU machine's Python, rehearsed here: for ``scripts/gpu_check.sh --dry-run``.

The environment holds exactly the packages of the GPU image ('cuda', as listed in
/work/.library/device/KINDS.md, read 2026-11-17) that the project's .venv has, CPU torch
standing in for CUDA torch, and nothing else: a venv made without pip (so neither pip nor
ensurepip) whose one ``.pth`` line points at a folder of links to those packages in .venv
(nothing copied, torch included); pip is left out, which the check must not need. What the image lacks among the requirements of
``scripts/gpu-wheels/*.txt`` (their closure, not descending into what the image has) are the
carried wheels: repacked here from .venv's installed files (the same distributions that
``scripts/prepare_gpu_wheels.sh`` downloads for the GPU machine's Python), deflated as wheels
are, so their size against the 64 MiB a device call carries is the real one. Built once per
.venv and kept in the temporary folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
CARRY_LIMIT = 64 * 2**20  # what one device call carries: the working tree and the carried paths together

GPU_IMAGE = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp""".split())


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Rehearsal:
    python: Path  # the environment's interpreter
    wheels: Path  # the carried wheels
    image: frozenset[str]  # distributions the environment has
    carried: frozenset[str]  # distributions the wheels hold


def _installed() -> dict[str, importlib.metadata.Distribution]:
    return {normalized(d.metadata["Name"]): d for d in importlib.metadata.distributions()}


def _requirements(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names += _requirements(path.parent / line[3:].strip())
        elif line:
            names.append(Requirement(line).name)
    return names


def _closure(installed: dict[str, importlib.metadata.Distribution]) -> tuple[set[str], set[str]]:
    """(of the GPU image, to carry) among the lists' requirements and theirs; the image's own
    requirements are the image's business."""
    todo = [normalized(n) for path in sorted((REPO / "scripts" / "gpu-wheels").glob("*.txt"))
            for n in _requirements(path)]
    image, carried = set(), set()
    while todo:
        name = todo.pop()
        if name in image or name in carried:
            continue
        if name in GPU_IMAGE:
            image.add(name)
            continue
        if name not in installed:
            raise RuntimeError(f"{name} is in scripts/gpu-wheels but not in .venv (make setup)")
        carried.add(name)
        for text in installed[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalized(requirement.name))
    return image, carried


def _repack(distribution: importlib.metadata.Distribution, folder: Path) -> None:
    """A wheel of an installed distribution: site-packages files at the root, prefix files
    (``../../../lib/...``) under ``NAME.data/data``, scripts under ``NAME.data/scripts``."""
    name = re.sub(r"[-.]+", "_", distribution.metadata["Name"])
    stem = f"{name}-{distribution.version}"
    with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED, compresslevel=6) as wheel:
        for file in distribution.files or []:
            parts = file.parts
            if "__pycache__" in parts or file.suffix == ".pyc":
                continue
            source = Path(distribution.locate_file(file))
            if not source.is_file():
                continue
            if parts[0] == "..":  # relative to site-packages: where under the prefix
                rest = Path(os.path.normpath(source)).relative_to(sys.prefix).parts
                arcname = (f"{stem}.data/scripts/{'/'.join(rest[1:])}" if rest[0] == "bin"
                           else f"{stem}.data/data/{'/'.join(rest)}")
            else:
                arcname = "/".join(parts)
            wheel.write(source, arcname)


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def rehearsal() -> Rehearsal:
    """The environment and its wheels, built on first use for this .venv."""
    installed = _installed()
    image, carried = _closure(installed)
    image |= {name for name in installed if name in GPU_IMAGE}
    image -= {"pip"}  # the image has pip; the check must not need it
    key = hashlib.sha256("\n".join([sys.executable, *sorted(image), *sorted(carried),
                                    *(f"{n}={installed[n].version}" for n in sorted(image | carried)),
                                    Path(__file__).read_text()]).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"icnet-gpu-rehearsal-{key}"
    result = Rehearsal(root / "venv" / "bin" / "python", root / "wheels", frozenset(image), frozenset(carried))
    if (root / "complete").is_file():
        return result
    shutil.rmtree(root, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix="icnet-gpu-rehearsal-"))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(building / "venv")], check=True)
        links = building / "image"
        links.mkdir()
        for name in sorted(image):
            distribution = installed[name]
            for top in {file.parts[0] for file in distribution.files or [] if file.parts[0] != ".."}:
                source = Path(distribution.locate_file(top))
                if source.exists() and not (links / top).exists() and not top.endswith(".pth"):
                    (links / top).symlink_to(source)
        (_site_packages(building / "venv") / "gpu_image.pth").write_text(f"{root / 'image'}\n")
        (building / "wheels").mkdir()
        for name in sorted(carried):
            _repack(installed[name], building / "wheels")
        (building / "complete").touch()
        os.rename(building, root)  # the venv's paths name root: it is used from there only
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
        if not (root / "complete").is_file():  # else another process built it meanwhile
            raise
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return result


def carried_bytes(wheels: Path) -> int:
    """The wheels and the repository's tracked files: what a device call would carry."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = [REPO / name for name in tracked.decode().split("\0") if name]
    return sum(p.stat().st_size for p in files if p.is_file()) + sum(p.stat().st_size for p in wheels.glob("*.whl"))
