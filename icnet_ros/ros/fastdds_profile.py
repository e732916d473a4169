"""The Fast DDS profile file goes in two environment variables: each Fast DDS reads one.

Fast DDS 3 (ROS 2 Kilted and newer) reads ``FASTDDS_DEFAULT_PROFILES_FILE`` only; Fast DDS 2
(Humble's 2.6, Jazzy's 2.14) reads ``FASTRTPS_DEFAULT_PROFILES_FILE`` only and ignores the
other without a word. With the profile in the wrong one, a Jazzy process keeps Fast DDS's
512 KiB shared-memory segment, so larger frames go over UDP and best-effort readers lose
them. Whoever sets the profile sets both (:func:`profile_environment`); the node copies one
that is set to the other before it creates its participant (:func:`share_profile_variables`).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path

PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def profile_environment(profile: Path | str) -> dict[str, str]:
    """Both variables naming ``profile``."""
    return {variable: str(profile) for variable in PROFILE_VARIABLES}


def profile_in(environment: Mapping[str, str]) -> str:
    """The profile file that ``environment`` names ('' if none)."""
    return next((environment[v] for v in PROFILE_VARIABLES if environment.get(v)), "")


def share_profile_variables(environment: MutableMapping[str, str]) -> None:
    """Where only one variable names a profile, the other names it too (so either Fast DDS loads it)."""
    profile = profile_in(environment)
    if profile:
        for variable in PROFILE_VARIABLES:
            if not environment.get(variable):
                environment[variable] = profile


def export_line(profile: Path | str) -> str:
    """The shell line that gives a process the profile, for messages."""
    return "export " + " ".join(f"{variable}={profile}" for variable in PROFILE_VARIABLES)
