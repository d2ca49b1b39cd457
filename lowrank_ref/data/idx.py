"""IDX files of unsigned bytes (LeCun's MNIST format): read, write, and the header checks.

An IDX file is the magic number ``0x0000 08 k`` (type code ``0x08`` = unsigned byte, ``k``
dimensions: 3 for images, 1 for labels), ``k`` big-endian uint32 sizes, then the data in C
order. :func:`read_idx` refuses a header that does not describe exactly the bytes that
follow it (sizes are multiplied as Python ints, so a lying header cannot wrap around int64).
"""
from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path
from typing import Optional

import numpy as np

from .._validate import check_path
from .files import GZIP_MAGIC, check_sha256, gunzip, gunzip_head, sha256_hex

__all__ = ["read_idx", "write_idx", "parse_idx", "idx_bytes", "idx_file_size",
           "read_idx_bytes", "IDX_UBYTE"]

IDX_UBYTE = 0x08  # IDX type code of unsigned byte, the only one MNIST uses
MAX_IDX_HEADER = 4 + 4 * 255  # the magic number and at most 255 sizes


def parse_idx(data: bytes, what: str) -> np.ndarray:
    """Decode the (uncompressed) bytes of an IDX file of unsigned bytes.

    Parameters
    ----------
    data : bytes
    what : str
        Names the file in error messages.

    Returns
    -------
    ndarray of uint8
        Read-only, of the shape the header states.

    Raises
    ------
    ValueError
        Naming ``what``: not an IDX file, another type code, truncated, or trailing bytes.
    """
    if len(data) < 4:
        raise ValueError(f"{what}: truncated IDX file: {len(data)} bytes, no 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or ndim == 0:
        raise ValueError(f"{what}: not an IDX file: magic number 0x{data[:4].hex()}, expected "
                         f"0x00000801 (labels) or 0x00000803 (images)")
    if code != IDX_UBYTE:
        raise ValueError(f"{what}: unsupported IDX type code 0x{code:02x}, expected 0x08 "
                         f"(unsigned byte)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{what}: truncated IDX file: {len(data)} bytes, header needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = math.prod(shape)   # Python ints: a lying header cannot wrap around int64
    if len(data) - header != size:
        kind = "truncated IDX file" if len(data) - header < size else "trailing bytes in IDX file"
        raise ValueError(f"{what}: {kind}: header says shape {shape} = {size} bytes of data, "
                         f"the file has {len(data) - header}")
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    except ValueError as exc:     # e.g. more dimensions than numpy supports
        raise ValueError(f"{what}: unsupported IDX shape {shape} ({exc})") from None


def idx_file_size(head: bytes) -> Optional[int]:
    """The size in bytes of the IDX file whose first bytes are ``head`` (header + data, as the
    header states), or None if ``head`` does not hold a whole header of unsigned bytes.

    Examples
    --------
    >>> idx_file_size(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:16])
    2368
    """
    if len(head) < 4 or head[:3] != bytes([0, 0, IDX_UBYTE]) or head[3] == 0:
        return None
    header = 4 + 4 * head[3]
    if len(head) < header:
        return None
    return header + math.prod(struct.unpack(f">{head[3]}I", head[4:header]))


def read_idx_bytes(path, limit: Optional[int] = None) -> bytes:
    """The (decompressed) bytes of the IDX file ``path``, never more than its header states.

    A ``.gz`` is decompressed up to the size the header gives (and at most ``limit``, such
    as the size of the official file): a gzip bomb is refused while it is read, naming
    ``path``; see :func:`lowrank_ref.data.files.gunzip`.
    """
    raw = Path(path).read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    size = idx_file_size(gunzip_head(raw, MAX_IDX_HEADER))
    expected = "the size its IDX header gives: trailing bytes in IDX file"
    if limit is not None and (size is None or limit < size):
        size, expected = limit, "the size of the official file"
    return gunzip(raw, path, size, expected)


def idx_bytes(array: np.ndarray) -> bytes:
    """The bytes of the IDX file of a uint8 array: magic, big-endian dims, data in C order.

    Examples
    --------
    >>> idx_bytes(np.array([7, 8], dtype=np.uint8)).hex()  # magic, size 2, the two bytes
    '00000801000000020708'
    """
    return (struct.pack(">HBB", 0, IDX_UBYTE, array.ndim)
            + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def read_idx(path, sha256: Optional[str] = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (LeCun's MNIST format), raw or gzip-compressed.

    The header is the magic number ``0x0000 08 k`` (type code ``0x08`` = unsigned byte, ``k``
    dimensions: 3 for images, 1 for labels) followed by ``k`` big-endian uint32 sizes.

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip compression is detected from its content, not its name.
    sha256 : str, optional
        Expected sha256 (hex) of the uncompressed content; not checked if None.

    Returns
    -------
    (n, ...) ndarray of uint8
        Read-only, of the shape the header states (``(n, 28, 28)`` or ``(n,)`` for MNIST).

    Raises
    ------
    TypeError
        If ``path`` is not a str/PathLike or ``sha256`` not a str.
    ValueError
        Naming the file, if it is not an IDX file of unsigned bytes, is truncated, its header
        states a size other than the data it holds, or its checksum is not ``sha256``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "labels-idx1-ubyte.gz")
    ...     digest = write_idx(p, np.array([3, 1, 4], dtype=np.uint8))
    ...     read_idx(p, sha256=digest).tolist()
    [3, 1, 4]
    """
    path = Path(check_path(path, "path"))
    if sha256 is not None and not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a hex str or None, got {type(sha256).__name__}")
    data = read_idx_bytes(path)
    array = parse_idx(data, str(path))
    if sha256 is not None:
        check_sha256(data, sha256, str(path))
    return array


def write_idx(path, array) -> str:
    """Write a uint8 array as an IDX file, gzip-compressed if ``path`` ends with ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
    array : (n, ...) array_like of integers in [0, 255]

    Returns
    -------
    str
        The sha256 (hex) of the uncompressed IDX bytes, as
        :data:`lowrank_ref.data.SHA256` stores it.

    Raises
    ------
    TypeError
        If ``path`` is not a str/PathLike or ``array`` is not an integer array.
    ValueError
        If ``array`` is 0-d or has values outside [0, 255].

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "t10k-images-idx3-ubyte")
    ...     _ = write_idx(p, np.zeros((2, 28, 28), dtype=np.uint8))
    ...     os.path.getsize(p)  # 16-byte header + 2 * 784 pixels
    1584
    """
    path = Path(check_path(path, "path"))
    a = np.asarray(array)
    if a.dtype.kind not in "iu":
        raise TypeError(f"array must be an integer array, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError("array must have at least one dimension, got a 0-d array")
    if a.size and (a.min() < 0 or a.max() > 255):
        raise ValueError(f"array must have values in [0, 255], got [{a.min()}, {a.max()}]")
    data = idx_bytes(a.astype(np.uint8))
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return sha256_hex(data)
