"""Start an engine worker process: a new interpreter on this one's executable running
``snowvault.engine.<module>.serve()``, talking over a socket pair whose end it gets as
its first argument (walk workers, restore workers).

    proc, conn = worker_launch.launch("walk_workers", init)   # conn.send(...) / recv()

Not multiprocessing's spawn, which would import the caller's main module again in every
worker and fail in a script without a main guard. ``multiprocessing.connection`` is
imported here, when a worker starts, not by every backup that starts none.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from multiprocessing import connection


def launch(
    module: str, init: tuple[Any, ...]
) -> tuple[subprocess.Popen[bytes], connection.Connection]:
    """The worker's process and our end of its connection, ``init`` already sent."""
    from multiprocessing import connection

    import snowvault

    mine, theirs = socket.socketpair()
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(snowvault.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    code = f"from snowvault.engine import {module}; {module}.serve()"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    conn = connection.Connection(mine.detach())
    conn.send(init)
    return proc, conn


def serve(main: Callable[..., int]) -> NoReturn:
    """The worker's side of :func:`launch` (its ``serve()`` calls this): the connection
    from the first argument, then ``main(conn, *init)``, whose result is the exit status."""
    from multiprocessing import connection

    conn = connection.Connection(int(sys.argv[1]))
    msg = conn.recv()
    assert msg[0] == "init"
    sys.exit(main(conn, *msg[1:]))
