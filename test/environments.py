"""Environments for the install tests: built once per session, shared, torch never copied.

An install test proves what the package's metadata declares by installing it into a new
venv. pip unpacking torch (750 MB) into each new venv cost about a minute per test. Here
each named environment is built once per pytest session (and once across pytest-xdist
workers, under a lock file), and torch comes in through a *layer* instead of a copy.

**The torch layer.** A folder of symbolic links to the installed files of torch and of its
dependency closure (its ``Requires-Dist``, markers evaluated here), as this test
interpreter has them (``make setup``: torch 2.13.0 by constraints.txt). A venv gets it
through one ``.pth`` file in its site-packages, so pip sees ``torch==2.13.0`` installed and
installs the rest of a declaration (numpy, onnxruntime, ...) from the metadata as it would
anywhere. Why that still proves the declaration: the layer holds what ``pip install
torch==2.13.0`` puts into a venv (the same files) and nothing else, so a module the package
imports without declaring it is still missing, unless torch requires it (then every real
install has it too). What a layer cannot show is that the package declares torch at all:
``Venv.requirements(name)`` reads the installed metadata, to check that.

API (the session fixture ``install_environments`` of test/conftest.py is an :class:`Environments`)::

    venv = install_environments.venv("metadata", build)   # build(venv) runs once per session
    venv = install_environments.venv("bare", build, layers=())   # no torch layer
    venv.python, venv.bin("segmentation_node")            # paths
    venv.pip("install", "--no-compile", "-c", constraints, "-r", requirements)   # this interpreter's pip
    venv.run("-c", "import torch")                        # CompletedProcess, text, checked
    venv.requirements("icnet_ros")                        # its installed Requires-Dist

The venvs have no pip of their own (``venv --without-pip``): this interpreter's pip installs
into them (``pip --python``), from its cache and the machine's wheel directories.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PIP_TIMEOUT_S = 1500
LAYERS = {"torch": ("torch",)}   # a layer's name -> the distributions whose closure it holds


def closure(names: tuple[str, ...]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions ``names`` and, recursively, what they require here."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found[name] = distribution = importlib.metadata.distribution(name)
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def build_layer(folder: Path, names: tuple[str, ...]) -> Path:
    """``folder`` with a link to each top-level entry of the closure of ``names`` (packages,
    modules, dist-info); an entry another distribution shares (a namespace package) is refused."""
    members = closure(names)
    owners: dict[str, set[str]] = {}
    for distribution in importlib.metadata.distributions():
        owner = distribution.metadata["Name"]
        for top in _top_level(distribution) if owner else ():
            owners.setdefault(top, set()).add(canonicalize_name(owner))
    folder.mkdir(parents=True)
    for name, distribution in members.items():
        for top in _top_level(distribution):
            if owners[top] - members.keys():
                raise RuntimeError(f"{top} of {name} is shared with {sorted(owners[top] - members.keys())}: "
                                   "it cannot be layered")
            link = folder / top
            if not link.exists():
                link.symlink_to(Path(distribution.locate_file(top)).resolve())
    return folder


def _top_level(distribution: importlib.metadata.Distribution) -> set[str]:
    """The entries a distribution installed directly in site-packages (no scripts, caches or .pth)."""
    tops = {Path(file).parts[0] for file in distribution.files or [] if not str(file).startswith("..")}
    return {top for top in tops if top != "__pycache__" and not top.endswith(".pth")}


class Venv:
    """A venv without pip of its own; this interpreter's pip installs into it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.python = path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def site_packages(self) -> Path:
        (folder,) = (self.path / "lib").glob("python*/site-packages")
        return folder

    def pip(self, *args: str) -> None:
        """``pip --python <venv> ARGS`` (e.g. ``install -c constraints.txt .``); fails with pip's output."""
        done = subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), *args],
                              capture_output=True, text=True, timeout=PIP_TIMEOUT_S, cwd=self.path)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """This venv's python with ``args``, in the venv's folder (not a checkout); must exit 0."""
        done = subprocess.run([str(self.python), *args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.path)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def requirements(self, name: str) -> list[str]:
        """The installed distribution ``name``'s Requires-Dist, as its metadata declares them."""
        code = ("import importlib.metadata, json, sys; "
                "print(json.dumps(importlib.metadata.requires(sys.argv[1]) or []))")
        return json.loads(self.run("-c", code, name).stdout)


class Environments:
    """Named venvs under ``root``, each built once (a lock file keeps parallel sessions to one build)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def venv(self, name: str, build: Callable[[Venv], None], layers: tuple[str, ...] = ("torch",)) -> Venv:
        """The venv ``name``: made with ``layers`` and ``build(venv)`` on first use; a failed build
        fails every test that asks for it (it is not retried)."""
        venv = Venv(self.root / name)
        with self._lock(name):
            done, failed = self.root / f"{name}.built", self.root / f"{name}.failed"
            if failed.exists():
                raise AssertionError(f"building the environment {name} failed:\n{failed.read_text()}")
            if not done.exists():
                try:
                    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.path)],
                                   check=True, timeout=300)
                    paths = [str(self.layer(layer)) for layer in layers]
                    (venv.site_packages() / "_icnet_test_layers.pth").write_text("".join(f"{p}\n" for p in paths))
                    build(venv)
                except BaseException as error:
                    failed.write_text(f"{type(error).__name__}: {error}")
                    raise
                done.touch()
        return venv

    def layer(self, name: str) -> Path:
        """The layer ``name`` (of :data:`LAYERS`), made on first use."""
        folder = self.root / "layers" / name
        with self._lock(f"layer-{name}"):
            if not folder.exists():
                build_layer(folder, LAYERS[name])
        return folder

    def _lock(self, name: str):
        return _FileLock(self.root / f".{name}.lock")


class _FileLock:
    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> None:
        self._file = self._path.open("w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
