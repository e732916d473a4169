"""Reading ``.pt``/``.pth`` files without running their pickles.

Every reader of torch files (weight files, training checkpoints) goes through
:func:`load_tensors_only`: ``torch.load(weights_only=True)``, which builds tensors and
plain containers only. A refusal is one line saying what the file holds that was not
read (torch's own message is eight lines that begin by suggesting ``weights_only=False``)
and what to use instead.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
from pathlib import Path

import torch

from icnet_ros.weights.errors import WeightsError

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
_GLOBAL = re.compile(r"unsupported (?:global: )?GLOBAL ([\w.]+)", re.IGNORECASE)
_OPERAND = re.compile(r"Unsupported operand (\d+)")
_STOPPED = re.compile(r"WeightsUnpickler error:\s*([^\n]+?)(?:\.\s|\n|$)")


def conversion_command(path: Path) -> str:
    """The command that rewrites a trusted torch file as ``.safetensors`` (it unpickles it)."""
    source, target = str(path), str(path.with_suffix(".safetensors"))
    return (f"python -c \"import torch; from safetensors.torch import save_file; "
            f"d = torch.load({source!r}, weights_only=False); save_file(d.get('state_dict', d), {target!r})\"")


def _head(path: Path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(len(ZIP_MAGIC))


def _is_torch_file(head: bytes) -> bool:
    """A zip archive (``torch.save``) or a pickle of protocol 2 or later (legacy ``torch.save``)."""
    return head.startswith(ZIP_MAGIC) or head[:1] == PICKLE_PROTO


def _what_was_found(head: bytes, message: str) -> str:
    """What torch's weights-only unpickler stopped at, in a few words."""
    found = _GLOBAL.search(message)
    if found:
        return f"it pickles unsupported GLOBAL {found.group(1)}"
    operand = _OPERAND.search(message)
    if operand:
        code = chr(int(operand.group(1)))
        name = pickletools.code2op[code].name if code in pickletools.code2op else f"byte {ord(code)}"
        raw = "" if head.startswith(ZIP_MAGIC) or len(head) < 2 else f", a raw pickle of protocol {head[1]}"
        return f"it holds pickle opcode {name}{raw}"
    stopped = _STOPPED.search(message)
    return f"torch stopped at: {stopped.group(1)}" if stopped else "its pickle holds objects other than tensors"


def refusal(path: Path, error: Exception, what: str = "weight file") -> str:
    """The one-line reason ``path`` is refused, given the exception ``torch.load`` raised."""
    head = _head(path)
    if not _is_torch_file(head):
        return f"{path} is not a readable {what}: neither a torch.save archive nor a pickle"
    if isinstance(error, EOFError):
        return f"{path} is not a readable {what}: its pickle ends early (truncated?)"
    if not isinstance(error, pickle.UnpicklingError):
        text = str(error).strip()
        reason = text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(error).__name__
        return f"{path} is not a readable {what}: {reason}"
    return (f"{path} refused ({_what_was_found(head, str(error))}); nothing in it was run: "
            "torch.load(weights_only=True) reads only tensors in plain containers. Use a .safetensors "
            f"file instead; if you trust this file's source, convert it with {conversion_command(path)} "
            "(docs/weights.md: adding the metadata)")


def load_tensors_only(path: Path, what: str = "weight file") -> object:
    """``torch.load(weights_only=True)`` on the CPU; a refusal raises :class:`WeightsError` (one line)."""
    with warnings.catch_warnings():  # a raw pickle's protocol warning: the refusal says it
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - whatever torch.load refuses, the file is refused
            raise WeightsError(refusal(path, error, what)) from None
