"""A small protobuf text-format reader for the official deploy prototxt (tests only)."""

from __future__ import annotations

import re
from pathlib import Path

TOKEN = re.compile(r'\s*(?:(#[^\n]*)|([A-Za-z_][\w]*)\s*(:)?\s*|(\{)|(\})|("[^"]*")|([^\s{}:#"]+))')


def _value(text: str):
    if text.startswith('"'):
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return {"true": True, "false": False}.get(text, text)


def parse(text: str) -> dict:
    """Parse text format into nested dicts; every field maps to a list of values."""
    root: dict = {}
    stack = [root]
    key = None
    for match in TOKEN.finditer(text):
        comment, name, colon, open_, close, string, bare = match.groups()
        if comment:
            continue
        if name is not None and key is None:
            key = name
            if colon:
                continue
            continue
        if open_:
            child: dict = {}
            stack[-1].setdefault(key, []).append(child)
            stack.append(child)
            key = None
        elif close:
            stack.pop()
        else:
            stack[-1].setdefault(key, []).append(_value(string or bare or name))
            key = None
    return root


def layers(path: Path) -> list[dict]:
    """The ``layer`` entries of a prototxt, each with scalar fields unwrapped."""
    def simplify(node):
        if isinstance(node, dict):
            return {k: [simplify(v) for v in vs] if len(vs) > 1 or k in ("bottom", "top", "param") else simplify(vs[0])
                    for k, vs in node.items()}
        return node
    return [simplify(layer) for layer in parse(Path(path).read_text())["layer"]]
