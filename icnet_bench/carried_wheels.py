"""``python -m icnet_bench.carried_wheels WHEELS SITE``: make the carried wheels importable
without pip, then print the shell ``export`` lines that use them.

For a machine that has a Python (with torch) but no package index and maybe no pip or
ensurepip (the GPU machines). Only what is missing is installed, per distribution: a wheel
whose distribution this Python already has (any version) is left alone, so the machine's
own torch, NumPy or OpenCV stay. A wheel is a zip: its files are unpacked into SITE, its
``*.data/purelib`` and ``platlib`` there too, ``*.data/data`` into SITE/prefix (where ROS
wheels keep their shared libraries and ament index) and ``*.data/scripts`` into
SITE/prefix/bin. Pure and binary wheels alike are importable that way. The lines printed
put SITE on PYTHONPATH, the libraries on LD_LIBRARY_PATH (what the ROS wheels' ``.pth``
bootstrapper would do, which a PYTHONPATH folder does not run) and the prefix on
AMENT_PREFIX_PATH and PATH. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import stat
import sys
import zipfile
from pathlib import Path


def distribution_name(wheel: Path) -> str:
    """The normalised distribution name of a wheel file (``ros_rclpy-9.1.2-...whl`` -> ``ros-rclpy``)."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def unpack(wheel: Path, site: Path) -> None:
    """Unpack ``wheel`` into ``site`` (its ``.data`` folders as pip would place them under site/prefix)."""
    prefix = site / "prefix"
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            parts = member.filename.split("/")
            if parts[0].endswith(".data") and len(parts) > 2:
                kind, rest = parts[1], parts[2:]
                base = {"purelib": site, "platlib": site, "data": prefix, "scripts": prefix / "bin"}.get(kind)
                if base is None:  # headers: not needed to run
                    continue
                target = base.joinpath(*rest)
            else:
                target = site.joinpath(*parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            mode = member.external_attr >> 16
            if mode & stat.S_IXUSR or (parts[0].endswith(".data") and parts[1] == "scripts"):
                target.chmod(0o755)


def install(wheels: Path, site: Path) -> tuple[list[str], list[str]]:
    """Unpack every wheel in ``wheels`` whose distribution is missing; returns (unpacked, kept)."""
    unpacked, kept = [], []
    for wheel in sorted(wheels.glob("*.whl")):
        name = distribution_name(wheel)
        if installed(name):
            kept.append(name)
            continue
        unpack(wheel, site)
        unpacked.append(name)
    return unpacked, kept


def exports(site: Path) -> list[str]:
    """Shell lines that make ``site`` importable, with its libraries and prefix."""
    prefix = site / "prefix"
    libraries = [str(prefix / "lib")] + sorted(str(p) for p in site.glob("*.libs") if p.is_dir())

    def joined(variable: str, parts: list[str]) -> str:
        old = os.environ.get(variable, "")
        return os.pathsep.join(parts + ([old] if old else []))

    values = {"PYTHONPATH": joined("PYTHONPATH", [str(site)]),
              "LD_LIBRARY_PATH": joined("LD_LIBRARY_PATH", libraries),
              "AMENT_PREFIX_PATH": joined("AMENT_PREFIX_PATH", [str(prefix)]),
              "PATH": joined("PATH", [str(prefix / "bin")]),
              "_ROS_WHEELS_BOOTSTRAP_COMPLETE": "1"}  # the libraries are set: no re-exec
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m icnet_bench.carried_wheels WHEELS SITE", file=sys.stderr)
        return 2
    wheels, site = Path(args[0]), Path(args[1])
    site.mkdir(parents=True, exist_ok=True)
    unpacked, kept = install(wheels, site) if wheels.is_dir() else ([], [])
    print(f"carried_wheels: unpacked {len(unpacked)} ({', '.join(unpacked) or 'none'}); "
          f"already here {len(kept)} ({', '.join(kept) or 'none'})", file=sys.stderr)
    print("\n".join(exports(site)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
