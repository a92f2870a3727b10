"""Small PNG pictures made on the spot, to stand in for Gravatar's.

No imaging library: a PNG is a signature and three chunks, and each row of
pixels is zlib-compressed with filter byte 0.
"""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png(width: int, height: int, pixel) -> bytes:
    """An RGB PNG; ``pixel(x, y)`` gives each pixel's (r, g, b)."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def portrait(background=(64, 140, 160), person=(250, 236, 214), size: int = 80) -> bytes:
    """A head and shoulders on a plain background, like a profile photo."""

    def pixel(x: int, y: int):
        u, v = x / size, y / size
        head = (u - 0.5) ** 2 + (v - 0.4) ** 2 < 0.035
        shoulders = (u - 0.5) ** 2 + (v - 1.05) ** 2 < 0.16
        return person if head or shoulders else background

    return png(size, size, pixel)
