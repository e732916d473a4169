"""Reading small JSON or YAML files that hold one mapping (label sets, class mappings)."""

from __future__ import annotations

import json
from pathlib import Path


def read_mapping_file(path: str | Path, what: str) -> dict:
    """The mapping in a ``.json``/``.yaml``/``.yml`` file; ValueError naming ``what`` and why."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as error:  # noqa: BLE001 - any parse error is reported the same way
        raise ValueError(f"{what} {path} is not valid {path.suffix[1:] or 'JSON'}: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a mapping")
    return data
