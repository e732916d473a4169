"""Every rosdep key of package.xml resolves with the real rosdep, against the offline
ros/rosdistro snapshot (../shared/rosdistro), for each distribution and its Ubuntu:
``rosdep install --from-paths src --ignore-src -y`` stops for the whole workspace at one
key it cannot resolve. A key must resolve to the distribution's packages (apt), not to a
``-pip`` rule: rosdep runs those as ``sudo pip install -U`` into the system Python, which
PEP 668 refuses on Ubuntu 24.04 and later and which replaces the system's NumPy on 22.04."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

PLATFORMS = [("humble", "ubuntu:jammy"), ("jazzy", "ubuntu:noble"), ("kilted", "ubuntu:noble"),
             ("lyrical", "ubuntu:resolute"), ("rolling", "ubuntu:resolute")]
TIMEOUT_S = 120


def rosdep(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rosdep", *args], env=environment, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def keys(rosdep_environment, package_source: Path) -> list[str]:
    """``rosdep keys`` of the package, as rosdep reads package.xml."""
    done = rosdep(rosdep_environment, "keys", "--from-paths", str(package_source), "--ignore-src")
    assert done.returncode == 0, done.stderr
    found = sorted(done.stdout.split())
    assert "rclpy" in found and "python3-numpy" in found, found
    return found


def resolve(environment: dict[str, str], keys: list[str], distro: str, os_name: str):
    """``rosdep resolve`` of every key at once: {key: installer} and the keys without a rule."""
    done = rosdep(environment, "resolve", *keys, "--rosdistro", distro, "--os", os_name)
    installers = dict(re.findall(r"^#ROSDEP\[(.+)\]\n#(\w+)$", done.stdout, re.MULTILINE))
    unresolved = re.findall(r"no rosdep rule for '(.+)'", done.stderr)
    assert set(installers) | set(unresolved) == set(keys), done.stdout + done.stderr
    return installers, unresolved


@pytest.mark.parametrize(("distro", "os_name"), PLATFORMS, ids=[p[0] for p in PLATFORMS])
def test_every_key_resolves_to_the_distribution(rosdep_environment, keys, distro, os_name):
    installers, unresolved = resolve(rosdep_environment, keys, distro, os_name)
    assert unresolved == [], f"{distro} on {os_name}: no rosdep rule for {', '.join(unresolved)}"
    by_pip = sorted(key for key, installer in installers.items() if installer != "apt")
    assert by_pip == [], f"{distro} on {os_name}: not installed by apt: {by_pip}"

