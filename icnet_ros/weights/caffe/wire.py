"""The protobuf wire format: just enough to walk a serialised message field by field.

A message is a sequence of ``(tag, value)`` records; the tag is a varint holding
``field_number << 3 | wire_type``. Wire types: 0 varint, 1 fixed 64 bit, 2 length
delimited (strings, bytes, nested messages, packed repeated scalars), 5 fixed 32 bit.
Groups (3, 4) are obsolete and refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


class Field(NamedTuple):
    """One record: varints as ``int``, everything else as the raw bytes of its payload."""

    number: int
    wire_type: int
    value: int | memoryview


def read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return its value and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def fields(data: bytes | memoryview) -> Iterator[Field]:
    """The records of one message, in file order."""
    data = memoryview(data)
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type in (FIXED64, FIXED32, LENGTH_DELIMITED):
            if wire_type == LENGTH_DELIMITED:
                size, pos = read_varint(data, pos)
            else:
                size = 8 if wire_type == FIXED64 else 4
            if pos + size > end:
                raise WireError(f"field {number} runs past the end of its message (truncated)")
            value, pos = data[pos: pos + size], pos + size
        else:
            raise WireError(f"field {number} has unsupported wire type {wire_type}")
        yield Field(number, wire_type, value)


def packed_varints(data: memoryview) -> list[int]:
    """The values of a packed repeated varint field."""
    values, pos = [], 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        values.append(value)
    return values


def signed64(value: int) -> int:
    """Reinterpret a decoded varint as a two's complement int64 (protobuf int64)."""
    return value - (1 << 64) if value >= 1 << 63 else value
