"""Golden files: every case as an ``.npz`` plus ``manifest.json``, for backends that are not
written in Python (:func:`export`, :func:`load`, :func:`verify`, and the command-line
helpers behind ``python -m lowrank_ref oracle export|verify DIR``).

The format is described in :mod:`lowrank_ref.oracle` ("Export format"). An export is
byte-reproducible: arrays are written in sorted key order into a zip with fixed
timestamps, and the manifest is JSON with sorted keys.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import pathlib
import sys
import zipfile
import zlib

import numpy as np

from .. import __version__
from .._validate import check_path
from ..checks import tolerance
from .checker import check_case
from .generators import cases, generate
from .measure import COND_MAX, relative_error
from .records import Case, Failure, Report, Tol
from .reference import FAMILIES

__all__ = ["export", "load", "verify", "export_command", "verify_command"]

#: Version of the golden-file format (written to the manifest).
_FORMAT = 1


def _to_array(v) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, str):
        return np.array(v, dtype=np.str_)
    if isinstance(v, (bool, np.bool_)):
        return np.array(bool(v))
    if isinstance(v, (int, np.integer)):
        return np.array(int(v), dtype=np.int64)
    if isinstance(v, (float, np.floating)):
        return np.array(float(v), dtype=np.float64)
    raise TypeError(f"cannot store {type(v).__name__} in an npz golden file")


def _from_array(a: np.ndarray):
    return a.item() if a.ndim == 0 else a


def _npz_bytes(arrays: dict) -> bytes:
    """An ``.npz`` (as ``np.savez``) with fixed timestamps: byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arrays[key]), allow_pickle=False)
    return buf.getvalue()


def _tol_json(t: Tol) -> dict:
    return {"key": t.key, "size": t.size, "cond": t.cond, "margin": t.margin,
            "float64": t.value(np.float64), "float32": t.value(np.float32)}


def _spec(d: dict) -> dict:
    return {k: {"shape": list(np.shape(v)), "dtype": _to_array(v).dtype.str}
            for k, v in d.items()}


def export(directory) -> pathlib.Path:
    """Write every case of every family as ``<name>.npz`` plus ``manifest.json``.

    Parameters
    ----------
    directory : str or path-like
        Created if missing; existing golden files are overwritten.

    Returns
    -------
    pathlib.Path
        The manifest's path.

    Raises
    ------
    TypeError
        If ``directory`` is not a str or path.

    Notes
    -----
    Each ``.npz`` holds ``input.<key>`` and ``expected.<key>`` arrays (scalars as 0-d
    arrays, strings as unicode arrays) and loads with ``np.load(path, allow_pickle=False)``.
    The manifest lists per case its ``name``, ``family``, ``file``, ``sha256``, ``dtype``,
    the ``inputs`` and ``expected`` shapes and dtypes and the ``tolerance`` per quantity
    (``key``, ``size``, ``cond``, ``margin``, and the ``float64`` and ``float32`` values).
    """
    directory = _directory(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for family in FAMILIES:
        for c in cases(family):
            arrays = {f"input.{k}": _to_array(v) for k, v in c.inputs.items()}
            arrays.update({f"expected.{k}": _to_array(v) for k, v in c.expected.items()})
            data = _npz_bytes(arrays)
            fname = f"{c.name}.npz"
            (directory / fname).write_bytes(data)
            entries.append({"name": c.name, "family": c.family, "file": fname,
                            "sha256": hashlib.sha256(data).hexdigest(), "dtype": "float64",
                            "inputs": _spec(c.inputs), "expected": _spec(c.expected),
                            "tolerance": {q: _tol_json(t) for q, t in c.tol.items()}})
    manifest = {"package": "lowrank_ref", "version": __version__, "format": _FORMAT,
                "families": list(FAMILIES), "cond_max": COND_MAX, "cases": entries}
    path = directory / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def _directory(directory) -> pathlib.Path:
    return pathlib.Path(check_path(directory, "directory"))


def _read_manifest(directory: pathlib.Path) -> dict:
    """The manifest, checked: a dict whose ``cases`` are dicts naming a plain ``file``."""
    path = directory / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {directory} (run export first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:   # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        raise ValueError(f"{path}: expected an object with a list 'cases', got "
                         f"{type(manifest).__name__}")
    for i, entry in enumerate(manifest["cases"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: cases[{i}] must be an object, got {type(entry).__name__}")
        name, file = entry.get("name"), entry.get("file")
        if not isinstance(name, str) or not isinstance(file, str):
            raise ValueError(f"{path}: cases[{i}] must have str 'name' and 'file', got "
                             f"{name!r}, {file!r}")
        # golden files live in the directory itself: no paths, no escaping it
        if file != pathlib.PurePath(file).name or file in ("", ".", "..") \
                or "/" in file or "\\" in file:
            raise ValueError(f"{path}: cases[{i}].file must be a file name in {directory}, "
                             f"got {file!r}")
    return manifest


def _load_entry(directory: pathlib.Path, entry: dict) -> Case:
    """The case of a manifest entry; ValueError naming the file if it cannot be read
    (not an npz, truncated, object arrays -- never unpickled --, missing fields)."""
    inputs, expected = {}, {}
    path = directory / entry["file"]
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            for key in z.files:
                part, _, name = key.partition(".")
                target = {"input": inputs, "expected": expected}.get(part)
                if target is None:
                    raise ValueError(f"unexpected array {key!r}")
                target[name] = _from_array(z[key])
        tol = {q: Tol(str(t["key"]), int(t["size"]), float(t["cond"]),
                      None if t["margin"] is None else float(t["margin"]))
               for q, t in entry["tolerance"].items()}
        return Case(entry["name"], str(entry["family"]), inputs, expected, tol)
    except FileNotFoundError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OSError, EOFError,
            zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: not a golden file of lowrank_ref "
                         f"({type(exc).__name__}: {exc})") from None


def load(directory) -> list:
    """The cases stored in ``directory`` by :func:`export` (hashes not checked: see
    :func:`verify`), in manifest order; pass them to ``check(..., golden=...)``.

    Raises
    ------
    FileNotFoundError
        If ``directory`` has no ``manifest.json`` (or a listed file is missing).
    ValueError
        Naming the file, if the manifest or a golden file is malformed: not JSON / npz,
        object arrays (files are read with ``allow_pickle=False``), a ``file`` entry that
        is a path rather than a name in ``directory``.
    TypeError
        If ``directory`` is not a str or path.
    """
    directory = _directory(directory)
    manifest = _read_manifest(directory)
    return [_load_entry(directory, e) for e in manifest["cases"]]


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compare_inputs(stored: Case, fresh: Case) -> list:
    def fail(msg, err=math.nan, tol=math.nan):
        return Failure(stored.name, "inputs", err, tol, msg)

    if set(stored.inputs) != set(fresh.inputs):
        return [fail(f"input keys {sorted(stored.inputs)} != regenerated "
                     f"{sorted(fresh.inputs)}")]
    out = []
    for k, v in fresh.inputs.items():
        s = stored.inputs[k]
        if isinstance(v, np.ndarray):
            s = np.asarray(s)
            if s.shape != v.shape or s.dtype.kind != v.dtype.kind:
                out.append(fail(f"{k}: shape/dtype {s.shape} {s.dtype} != regenerated "
                                f"{v.shape} {v.dtype}"))
                continue
            tol = tolerance("reconstruction", np.float64, max(v.shape, default=1))
            err = relative_error(s.astype(np.float64), v.astype(np.float64)) if v.size \
                else 0.0
            if not err <= tol:
                out.append(fail(f"{k}: differs from the regenerated input", err, tol))
        elif s != v or type(s) is not type(v):
            out.append(fail(f"{k}: {s!r} != regenerated {v!r}"))
    return out


#: How far a stored condition number may be from the regenerated one (a factor): both are
#: rounded to 2 significant digits, and BLAS rounding may tip the second one.
_COND_FACTOR = 1.25


def _compare_tolerances(stored: Case, fresh: Case) -> list:
    out = []
    if set(stored.tol) != set(fresh.tol):
        return [Failure(stored.name, "tolerance", math.nan, math.nan,
                        f"compared quantities {sorted(stored.tol)} != regenerated "
                        f"{sorted(fresh.tol)}")]
    for q, t in fresh.tol.items():
        s = stored.tol[q]
        ok = (s.key == t.key and s.size == t.size
              and 1 / _COND_FACTOR <= s.cond / t.cond <= _COND_FACTOR
              and (s.margin is None) == (t.margin is None)
              and (t.margin is None or abs(s.margin - t.margin) <= 1e-6 + 0.01 * t.margin))
        if not ok:
            out.append(Failure(stored.name, "tolerance", math.nan, math.nan,
                               f"{q}: stored {s} != regenerated {t}"))
    return out


_TOP_FIELDS = {"package", "version", "format", "families", "cond_max", "cases"}
_ENTRY_FIELDS = {"name", "family", "file", "sha256", "dtype", "inputs", "expected", "tolerance"}


def _check_manifest_fields(manifest: dict) -> list:
    """The manifest's own fields (everything but the cases) against this version."""
    def fail(msg):
        return Failure("manifest.json", "manifest", math.nan, math.nan, msg)

    out = []
    if set(manifest) != _TOP_FIELDS:
        out.append(fail(f"fields {sorted(manifest)} != {sorted(_TOP_FIELDS)}"))
    expected = {"package": "lowrank_ref", "format": _FORMAT, "families": list(FAMILIES),
                "cond_max": COND_MAX}
    for k, v in expected.items():
        if manifest.get(k) != v or type(manifest.get(k)) is not type(v):
            out.append(fail(f"{k}: {manifest.get(k)!r} != {v!r} (this version's)"))
    return out


def _check_entry_fields(entry: dict, stored: Case, fresh: Case) -> list:
    """Every field of a manifest entry recomputed: from the stored arrays (shapes and dtypes a
    non-Python backend reads), from the regeneration (family, file, dtype) and from the
    stored tolerances (their float64 and float32 values)."""
    def fail(msg):
        return Failure(stored.name, "manifest", math.nan, math.nan, msg)

    out = []
    if set(entry) != _ENTRY_FIELDS:
        out.append(fail(f"entry fields {sorted(entry)} != {sorted(_ENTRY_FIELDS)}"))
    for k, v in (("family", fresh.family), ("file", f"{fresh.name}.npz"), ("dtype", "float64")):
        if entry.get(k) != v:
            out.append(fail(f"{k}: {entry.get(k)!r} != {v!r}"))
    for part in ("inputs", "expected"):
        specs = entry.get(part)
        for which, case in (("stored arrays", stored), ("regenerated case", fresh)):
            if specs != _spec(getattr(case, part)):
                out.append(fail(f"{part}: the shapes and dtypes listed differ from those of "
                                f"the {which}"))
    for q, t in (entry.get("tolerance") or {}).items():
        if not isinstance(t, dict):
            out.append(fail(f"tolerance {q}: not an object"))
            continue
        tol = stored.tol.get(q)
        for dt in ("float64", "float32"):
            value = tol.value(np.dtype(dt)) if tol is not None else math.nan
            if t.get(dt) != value:
                out.append(fail(f"tolerance {q}: {dt} value {t.get(dt)!r} != {value!r}, "
                                f"recomputed from its key, size and cond"))
    return out


def verify(directory) -> Report:
    """Confirm the golden files in ``directory``: hashes, and values against a regeneration.

    Every field of the manifest is covered by a checksum or recomputed: its package, format,
    family list and ``cond_max`` must be this version's (quantity ``"manifest"``, case
    ``manifest.json``); for every entry the file exists and its sha256 matches (a modified
    file is reported by name under quantity ``"sha256"``); the cases are regenerated (not
    from the cache), and the entry's family, file name and dtype must be the regenerated
    ones, its per-array shapes and dtypes those of the stored arrays and of the
    regenerated case, its tolerances' ``float64`` and ``float32`` values those recomputed
    from their key, size and cond (``"manifest"``); the stored inputs must equal the
    regenerated ones to round-off, the stored expected values must match the regenerated
    ones within each case's tolerances, and the stored tolerances (key, size, margin;
    cond within a factor 1.25) must match the regenerated ones (``"tolerance"``). Missing
    and unknown cases are failures. Files are read with ``allow_pickle=False``.

    Parameters
    ----------
    directory : str or path-like

    Returns
    -------
    Report
        With ``family="verify"``; ``str(report)`` lists every problem (a missing or
        malformed manifest too: a failure of quantity ``"manifest"``).

    Raises
    ------
    TypeError
        If ``directory`` is not a str or path.
    """
    directory = _directory(directory)
    try:
        manifest = _read_manifest(directory)
    except (OSError, ValueError) as exc:
        f = Failure("manifest.json", "manifest", math.nan, math.nan, str(exc))
        return Report(False, [f], "verify", "float64", 0)
    failures, notes = _check_manifest_fields(manifest), []
    if manifest.get("version") != __version__:
        notes.append(f"golden files written by lowrank_ref {manifest.get('version')}, "
                     f"checked with {__version__}")
    fresh = {c.name: c for family in FAMILIES for c in generate(family)}
    stored_names = set()
    for entry in manifest.get("cases", []):
        name = entry.get("name", "?")
        stored_names.add(name)
        path = directory / entry.get("file", "")
        if not path.is_file():
            failures.append(Failure(name, "file", math.nan, math.nan,
                                    f"{entry.get('file')}: file missing"))
            continue
        digest = _sha256(path)
        if digest != entry.get("sha256"):
            failures.append(Failure(name, "sha256", math.nan, math.nan,
                                    f"{entry['file']}: sha256 {digest[:16]}... does not match "
                                    f"the manifest's {str(entry.get('sha256'))[:16]}... "
                                    "(file modified)"))
            continue
        if name not in fresh:
            failures.append(Failure(name, "manifest", math.nan, math.nan,
                                    "unknown case: not generated by this version"))
            continue
        try:
            stored = _load_entry(directory, entry)
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a finding
            failures.append(Failure(name, "file", math.nan, math.nan,
                                    f"{entry['file']}: cannot be read ({exc})"))
            continue
        new = fresh[name]
        failures += _check_entry_fields(entry, stored, new)
        failures += _compare_inputs(stored, new)
        failures += _compare_tolerances(stored, new)
        failures += check_case(stored, lambda **_: new.expected, np.float64)
    for name in sorted(set(fresh) - stored_names):
        failures.append(Failure(name, "manifest", math.nan, math.nan,
                                "case missing from the manifest"))
    return Report(not failures, failures, "verify", "float64", len(stored_names),
                  (), tuple(notes))


# ---------------------------------------------------------------------------------------
# command line (wired into ``python -m lowrank_ref oracle export|verify DIR``)
# ---------------------------------------------------------------------------------------
def export_command(directory, stream=None) -> int:
    """``oracle export DIR``: write the golden files, print a summary; exit status 0.

    Examples
    --------
    >>> import io, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = io.StringIO()
    ...     export_command(d, out), out.getvalue().startswith("wrote")
    (0, True)
    """
    stream = sys.stdout if stream is None else stream
    path = export(directory)
    counts = {f: len(cases(f)) for f in FAMILIES}
    print(f"wrote {sum(counts.values())} golden cases to {path.parent} "
          f"(manifest {path.name}, lowrank_ref {__version__})", file=stream)
    for family, n in counts.items():
        print(f"  {family}: {n}", file=stream)
    return 0


def verify_command(directory, stream=None) -> int:
    """``oracle verify DIR``: print the :func:`verify` report; exit status 0 if it passed,
    1 if a file was modified or a value differs, 2 if ``DIR`` holds no manifest."""
    stream = sys.stdout if stream is None else stream
    report = verify(directory)
    print(report, file=stream)
    if report.passed:
        return 0
    return 2 if any(f.quantity == "manifest" and f.case == "manifest.json"
                    for f in report.failures) else 1
