"""Reading data files safely: gzip with a size cap, and sha256 checks.

Used by the IDX reader (:mod:`lowrank_ref.data.idx`) and by :func:`lowrank_ref.data.load`
for both on-disk layouts. Compression is detected from a file's content (the gzip magic
number), never from its name.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path

__all__ = ["MAX_DECOMPRESSED_BYTES", "sha256_hex", "check_sha256", "gunzip", "read_maybe_gzip"]

#: Largest decompressed size accepted from a ``.gz`` (the biggest real file, the pickle, is
#: ~220 MB): a "gzip bomb" is refused instead of filling the memory. Read at each call, so a
#: test may lower it (``monkeypatch.setattr(lowrank_ref.data.files, ...)``).
MAX_DECOMPRESSED_BYTES = 1 << 30

GZIP_MAGIC = b"\x1f\x8b"


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(data: bytes, expected: str, what: str, hint: str = "") -> None:
    """Raise ValueError naming ``what`` if ``sha256(data) != expected``.

    ``hint`` is appended to the message (e.g. "this is the Fashion-MNIST file, not MNIST").

    Examples
    --------
    >>> check_sha256(b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ...              "empty")
    """
    got = sha256_hex(data)
    if got != expected:
        raise ValueError(f"{what}: sha256 mismatch: expected {expected}, got {got}{hint}. The "
                         f"file is corrupt or not the official one; pass verify=False to load "
                         f"data of your own.")


def gunzip(raw: bytes, path) -> bytes:
    """Decompress ``raw`` (all gzip members), at most :data:`MAX_DECOMPRESSED_BYTES`.

    Raises
    ------
    ValueError
        Naming ``path``, if the stream is truncated or corrupt, or decompresses to more than
        :data:`MAX_DECOMPRESSED_BYTES`.
    """
    limit = MAX_DECOMPRESSED_BYTES
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: truncated or corrupt gzip file ({exc})") from None
    if len(out) > limit:
        raise ValueError(f"{path}: decompresses to more than {limit} bytes "
                         f"(expected an MNIST-sized file; a gzip bomb?)")
    return out


def read_maybe_gzip(path: Path) -> bytes:
    """The bytes of ``path``, decompressed (:func:`gunzip`) if they start with the gzip magic."""
    raw = Path(path).read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    return gunzip(raw, path)
