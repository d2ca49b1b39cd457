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
from typing import Optional

__all__ = ["MAX_DECOMPRESSED_BYTES", "CHUNK_BYTES", "sha256_hex", "check_sha256", "gunzip",
           "gunzip_head", "read_maybe_gzip"]

#: Largest decompressed size accepted from a ``.gz`` whatever it claims to be (the biggest
#: real file, the pickle, is 220 MB); each reader also passes the size it expects (an IDX
#: file's header, the official pickle's size), and a "gzip bomb" is refused as soon as it
#: exceeds it, while it is read. Read at each call, so a test may lower it
#: (``monkeypatch.setattr(lowrank_ref.data.files, ...)``).
MAX_DECOMPRESSED_BYTES = 1 << 30
#: Decompressed bytes read at a time (the most a bomb gets past its limit).
CHUNK_BYTES = 1 << 20

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


def gunzip(raw: bytes, path, limit: Optional[int] = None, expected: str = "") -> bytes:
    """Decompress ``raw`` (all gzip members), refusing more than ``limit`` bytes as it reads.

    The output is read in chunks of :data:`CHUNK_BYTES` and the count checked after each, so
    a "gzip bomb" is refused after ``limit`` bytes (plus one chunk) instead of being
    decompressed first.

    Parameters
    ----------
    raw : bytes
    path
        Names the file in messages.
    limit : int, optional
        The expected decompressed size at most (the size of the data set's file);
        :data:`MAX_DECOMPRESSED_BYTES` caps it and stands in for None.
    expected : str
        What ``limit`` is, for the message (e.g. "the size its IDX header gives").

    Raises
    ------
    ValueError
        Naming ``path``, if the stream is truncated or corrupt, or decompresses to more than
        ``limit`` bytes.

    Examples
    --------
    >>> bomb = gzip.compress(bytes(10_000))
    >>> len(gunzip(bomb, "ok.gz"))
    10000
    >>> gunzip(bomb, "bomb.gz", limit=100, expected="its header's size")
    Traceback (most recent call last):
    ...
    ValueError: bomb.gz: decompresses to more than 100 bytes (its header's size; a gzip bomb?)
    """
    cap = MAX_DECOMPRESSED_BYTES
    if limit is None or limit > cap:
        limit, expected = cap, "the cap MAX_DECOMPRESSED_BYTES of lowrank_ref.data.files"
    chunks, size = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            while size <= limit:
                chunk = f.read(min(CHUNK_BYTES, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: truncated or corrupt gzip file ({exc})") from None
    if size > limit:
        raise ValueError(f"{path}: decompresses to more than {limit} bytes ("
                         + (f"{expected}; " if expected else "") + "a gzip bomb?)")
    return b"".join(chunks)


def gunzip_head(raw: bytes, n: int) -> bytes:
    """The first ``n`` decompressed bytes of ``raw`` (fewer if the stream is shorter or
    corrupt: the full read reports that)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            return f.read(n)
    except (OSError, EOFError, zlib.error):
        return b""


def read_maybe_gzip(path: Path, limit: Optional[int] = None, expected: str = "") -> bytes:
    """The bytes of ``path``, decompressed (:func:`gunzip`, at most ``limit`` bytes) if they
    start with the gzip magic number."""
    raw = Path(path).read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    return gunzip(raw, path, limit, expected)
