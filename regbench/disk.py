"""A write that the disk refused (full, read-only, not ours), as the one line a user reads, the
same from every write path and whatever the amount of space left."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TypeGuard

from regbench.config import ConfigError

NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)


def refused(exc: BaseException) -> TypeGuard[OSError]:
    """Whether exc is a write the disk refused (not a bug: the place or its space is at fault)."""
    return isinstance(exc, OSError) and exc.errno in NO_ROOM + REFUSED


def write_error(
    exc: OSError, folder: object = None, fix: str = "pass out_dir=<a writable folder with room>"
) -> str:
    """`no space left on device in <folder>; free some space or pass out_dir=...`: the folder
    named (the file that happened to fail differs with the space left), else the file."""
    if exc.errno in NO_ROOM:
        where = f" in {folder}" if folder else f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on device{where}; free some space or {fix}, then rerun"
    where = f"in {folder}" if folder else exc.filename or "there"
    return f"cannot write {where} ({exc.strerror}); {fix}"


def check_folder(folder: Path, option: str) -> None:
    """ConfigError unless folder is, or could be made as, a writable folder on a disk not full:
    checked before any work (a file in its path, a read-only or full disk, else found only when
    the output is written)."""
    p = folder
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise ConfigError(
            f"{option} {folder}: {p} is a file, not a folder; choose another {option}"
        )
    if not os.access(p, os.W_OK):  # a read-only file system is refused even to root
        raise ConfigError(f"{option} {folder}: {p} is not writable; choose another {option}")
    if os.statvfs(p).f_bavail == 0:  # a full disk: found before the work, not after it
        raise ConfigError(
            f"{option} {folder}: no space left on device in {p}; free some space or choose "
            f"another {option}"
        )


def check_figure(out: Path, option: str = "--out") -> None:
    """A figure's file name: its format (the suffix) one matplotlib writes, its folder writable."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if not out.name or out.is_dir():
        raise ConfigError(f"{option} '{out}' is not a file name; give one such as std.png")
    suffix = out.suffix.lstrip(".").lower()
    if suffix not in formats:
        said = f"'.{suffix}' is not a format matplotlib writes" if suffix else "has no format"
        raise ConfigError(
            f"{option} {out}: {said}; end it with one of: .{', .'.join(sorted(formats))}"
        )
    check_folder(out.parent, option)
