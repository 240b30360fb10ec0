"""Output for humans (Rich tables and progress bars) and for scripts (JSON / JSON lines).

The engine and services never print: they call a progress callback, and this module
renders it — a Rich bar on stderr for people, one JSON object per line with ``--json``.

Tables never cut a value: on a terminal a long cell folds onto the next line, and when
stdout is a pipe or file the table is as wide as its widest row (ARNs stay whole and
greppable). Rich is imported inside the functions that draw, so importing this module
costs every command nothing. Must not depend on the server side or on botocore.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from snowvault.core.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, default=_default) + "\n")
    sys.stdout.flush()


def result(as_json: bool, doc: Any, text: str) -> None:
    """The final answer of a command: ``doc`` as JSON, or ``text`` for people."""
    if as_json:
        emit_json(doc)
    else:
        from rich.console import Console

        Console(highlight=False, soft_wrap=True).print(text, markup=False)


def warn(as_json: bool, text: str) -> None:
    if as_json:
        emit_json({"message_type": "warning", "message": text})
    else:
        from rich.console import Console

        Console(stderr=True, highlight=False).print(f"warning: {text}", markup=False)


def table(as_json: bool, rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> None:
    if as_json:
        emit_json(list(rows))
        return
    from rich.table import Table

    out = Table(box=None, header_style="bold", pad_edge=False)
    for title, _ in columns:
        out.add_column(title, overflow="fold")
    for row in rows:
        out.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    table_console(out).print(out)


def table_console(out: Table) -> Console:
    """The console to print ``out`` on: the terminal's, or one as wide as the table.

    Rich gives a pipe 80 columns; a table wider than that would fold its ARNs, so when
    stdout is not a terminal the console is widened to the table's natural width.
    """
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(highlight=False)
    if console.is_terminal:
        return console
    natural = Measurement.get(console, console.options.update_width(1 << 20), out).maximum
    return Console(highlight=False, width=max(console.width, natural))


def size(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(detail=f"tag must be KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


@contextmanager
def progress(as_json: bool) -> Iterator[Callable[[Any], None]]:
    """A callback for engine/service progress objects (files_done, bytes_done, ...)."""
    if as_json:
        yield lambda p: emit_json({"message_type": "status", **_progress_doc(p)})
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda p: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[files]} files"),
        console=console,
        transient=True,
    )
    task = bar.add_task("working", total=None, files=0)

    def update(p: Any) -> None:
        bar.update(
            task,
            description=str(getattr(p, "phase", "working")),
            completed=getattr(p, "bytes_done", 0),
            total=getattr(p, "bytes_total", None),
            files=getattr(p, "files_done", 0),
        )

    with bar:
        yield update


def _progress_doc(p: Any) -> dict[str, Any]:
    fields = (
        "phase",
        "files_done",
        "files_total",
        "bytes_done",
        "bytes_total",
        "rate",
        "eta_seconds",
        "current",
        "errors",
    )
    doc = {f: getattr(p, f) for f in fields if hasattr(p, f)}
    total = doc.get("bytes_total")
    if total:
        doc["percent_done"] = round(100.0 * doc.get("bytes_done", 0) / total, 1)
    return doc
