"""Atomic file writing: every output appears whole under its name, or not at all.

A file is written under a temporary name beside its destination and renamed onto it only when
complete, so a failure or an interruption never leaves a partial output or a half-replaced file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import OutputError


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" +
                                        "".join(path.suffixes), dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"Cannot write to {path.parent} ({exc.strerror}); choose an output "
                          "folder you can write to.") from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"Cannot write {path} ({exc.strerror or exc}).") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV file atomically; None becomes an empty cell."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    atomic_write_text(path, buffer.getvalue())


def atomic_write_json(path: Path, data: object) -> None:
    """Write JSON atomically; NaN and infinity are refused (the engine reports them as null)."""
    import json

    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
