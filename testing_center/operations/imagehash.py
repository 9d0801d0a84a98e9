"""Perceptual hashes of check-in photos, to find one face photo on several accounts.

The difference hash (dHash; N. Krawetz, "Kind of like that", hackerfactor.com, 2013):
shrink the image to 9x8 grey pixels and set one bit per pair of horizontal neighbours,
1 where the left pixel is brighter. Re-encoding, resizing, small crops and changes of
brightness move few bits, so two copies of one photo lie within a small Hamming
distance, while unrelated photos differ in about half of the 64 bits. A featureless
image (a blank frame, a lens cap) hashes to almost all zeros and is not compared.

Pure: Pillow only, no database, no Flask.
"""

from __future__ import annotations

import io

HASH_BITS = 64
MIN_SET_BITS = 4  # fewer (or as few unset) bits: too little detail to compare


def difference_hash(image_bytes: bytes) -> str | None:
    """Return the 64-bit dHash of an image as 16 hex digits, or None if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            grey = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
            pixels = list(grey.tobytes())
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None
    value = 0
    for row in range(8):
        for column in range(8):
            left, right = pixels[row * 9 + column], pixels[row * 9 + column + 1]
            value = (value << 1) | (left > right)
    return f"{value:016x}"


def distance(first: str, second: str) -> int:
    """The number of bits in which two hashes differ (Hamming distance)."""
    return (int(first, 16) ^ int(second, 16)).bit_count()


def is_comparable(image_hash: str) -> bool:
    """Whether a hash carries enough detail to be compared (not a featureless image)."""
    set_bits = int(image_hash, 16).bit_count()
    return MIN_SET_BITS <= set_bits <= HASH_BITS - MIN_SET_BITS


def near_pairs(hashes: dict[int, str], max_distance: int) -> list[tuple[int, int, int]]:
    """Pairs of keys whose hashes lie within ``max_distance`` bits: ``(a, b, distance)``.

    Pigeonhole: the 64 bits are cut into ``max_distance + 1`` blocks, and two hashes
    differing in at most ``max_distance`` bits agree entirely on at least one block, so
    only hashes sharing a block are compared (a few per bucket, not all pairs).
    """
    blocks = max_distance + 1
    bounds = [HASH_BITS * n // blocks for n in range(blocks + 1)]
    buckets: dict[tuple[int, int], list[int]] = {}
    values = {key: int(text, 16) for key, text in hashes.items()}
    for key, value in values.items():
        for n in range(blocks):
            width = bounds[n + 1] - bounds[n]
            part = (value >> bounds[n]) & ((1 << width) - 1)
            buckets.setdefault((n, part), []).append(key)
    found: dict[tuple[int, int], int] = {}
    for members in buckets.values():
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                pair = (min(first, second), max(first, second))
                if pair not in found:
                    bits = (values[first] ^ values[second]).bit_count()
                    if bits <= max_distance:
                        found[pair] = bits
    return sorted((a, b, bits) for (a, b), bits in found.items())
