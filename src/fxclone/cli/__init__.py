"""Command-line interface: parses arguments, calls :mod:`fxclone.journey`, prints results.

One Typer app (``common.py``) with its commands in three modules along the user's journey:
``data`` (generate, render, effects, align, import), ``train`` (models, train, compare, info,
export) and ``use`` (evaluate, abx, mushra, sweep, apply, demo).
"""

from __future__ import annotations

import sys
from typing import Any

from fxclone.cli import data, train, use  # noqa: F401  (registers the commands)
from fxclone.cli.common import app, err
from fxclone.errors import FxcloneError


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; never a traceback for them.

    Notices (:class:`~fxclone.errors.FxcloneNotice` warnings) print as one ``note:`` line. A
    failed write that no command reported itself (disk full, folder not writable) is one
    error line too.
    """
    import errno
    import warnings

    from rich.markup import escape

    from fxclone.errors import FxcloneNotice

    show = warnings.showwarning

    def _show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, FxcloneNotice):
            err.print(f"[yellow]note:[/yellow] {escape(str(message))}", soft_wrap=True)
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = _show
    full = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
    unwritable = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}
    try:
        app(args=argv, prog_name="fxclone")
    except FxcloneError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in full | unwritable:
            raise
        what = f"could not write {exc.filename}" if exc.filename else "a write failed"
        if exc.errno in full:
            line = f"{what} (disk full or file too large); free some space or choose another folder"
        else:
            line = f"{what} ({exc.strerror}); choose a folder that can be written"
        err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; checkpoints are kept, run the same command again to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
