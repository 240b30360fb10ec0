"""Client programs (``mariadb-dump``, ``redis-cli``) for the database plugins: a child
whose stdout is a backup stream, a child fed a restore stream, the one-line errors a job
shows when either fails, and which resolved address of a server answers.

    with child.reading(["redis-cli", "--rdb", "-"], env, "redis-cli") as out:
        sink_reads(out)                      # Unavailable("redis-cli: AUTH failed ...")
    child.feed(["mariadb", "db"], env, "mariadb", source_stream, report)

Secrets never reach a command line: callers pass them in the child's environment
(``REDISCLI_AUTH``) or a 0600 file in a 0700 directory (:func:`private_dir`), and every
message is scrubbed of the secrets passed in before it leaves this module. A child that
is not read to its end (the sink failed) is killed, never left behind.

Depends on core only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, BinaryIO, cast

from snowvault.core.errors import Unavailable

CHUNK = 1024 * 1024
"""Bytes copied at a time between a restore stream and a child."""

MAX_LINE = 300
"""The longest error line a job's StatusMessage gets from a child's stderr."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``.

    >>> scrub("bad pass s3cret for root", ["s3cret", ""])
    'bad pass *** for root'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def one_line(stderr: str, *, skip: Iterable[str] = (), secrets: Iterable[str] = ()) -> str:
    """The last meaningful line of a child's stderr, scrubbed and shortened (``skip``:
    prefixes of chatter lines that are no error).

    >>> one_line("sending REPLCONF\\nAUTH failed: WRONGPASS\\n\\n", skip=["sending"])
    'AUTH failed: WRONGPASS'
    """
    lines = [ln.strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not any(ln.startswith(s) for s in skip)]
    line = scrub(lines[-1] if lines else "exited without a message", secrets)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def answering(addresses: Sequence[str], port: int, timeout: float = 3.0) -> str:
    """The first of ``addresses`` (all allowed by the network-reach rule) that accepts a
    TCP connection on ``port`` (a name resolving to ::1 and 127.0.0.1 reaches a server
    listening on only one of them), else the first (the client then says why not). One
    address is not probed (a probe is a connection the server sees aborted)."""
    if len(addresses) == 1:
        return addresses[0]
    for address in addresses:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return address
        except OSError:
            continue
    return addresses[0]


def environment(extra: Mapping[str, str], drop: Iterable[str] = ()) -> dict[str, str]:
    """The server's environment without variables that would change what a client reads
    or whom it signs in as (``drop``), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in set(drop)}
    env.update(extra)
    return env


@contextlib.contextmanager
def private_dir(prefix: str) -> Iterator[str]:
    """A 0700 temporary directory, removed on every exit path."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: str, text: str) -> None:
    """Create ``path`` with mode 0600 (never readable by others, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _stderr_text(err: IO[bytes]) -> str:
    err.seek(0)
    return err.read(64 * 1024).decode("utf-8", "replace")


def run(
    argv: list[str],
    env: Mapping[str, str],
    label: str,
    *,
    secrets: Iterable[str] = (),
    timeout: float = 60.0,
) -> str:
    """Run a client to its end; its stdout (text). Unavailable with ``label: line`` when
    it cannot be started, times out or exits non-zero."""
    try:
        done = subprocess.run(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise Unavailable(detail=f"{label}: the program {argv[0]!r} is not installed") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(detail=f"{label}: no answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        text = done.stderr.decode("utf-8", "replace")
        raise Unavailable(detail=f"{label}: {one_line(text, secrets=secrets)}")
    return done.stdout.decode("utf-8", "replace")


@contextlib.contextmanager
def reading(
    argv: list[str],
    env: Mapping[str, str],
    label: str,
    *,
    skip: Iterable[str] = (),
    secrets: Iterable[str] = (),
) -> Iterator[BinaryIO]:
    """The stdout of a running client, to be read to its end; on leaving, the child's
    exit is checked (Unavailable with its one line) or, when the reader stopped early,
    the child is killed."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        except FileNotFoundError:
            raise Unavailable(detail=f"{label}: the program {argv[0]!r} is not installed") from None
        assert proc.stdout is not None
        finished = False
        try:
            yield cast(BinaryIO, proc.stdout)
            finished = True
        finally:
            if not finished:
                proc.kill()
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            line = one_line(_stderr_text(err), skip=skip, secrets=secrets)
            raise Unavailable(detail=f"{label}: {line}")


def feed(
    argv: list[str],
    env: Mapping[str, str],
    label: str,
    stream: BinaryIO,
    on_bytes: Callable[[int], None],
    *,
    secrets: Iterable[str] = (),
) -> None:
    """Run a client with ``stream`` as its stdin, copied in chunks (``on_bytes`` gets the
    running total); Unavailable with the client's one line when it fails."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err
            )
        except FileNotFoundError:
            raise Unavailable(detail=f"{label}: the program {argv[0]!r} is not installed") from None
        assert proc.stdin is not None
        done = 0
        broken = False
        try:
            while chunk := stream.read(CHUNK):
                try:
                    proc.stdin.write(chunk)
                except BrokenPipeError:
                    broken = True  # the client stopped (an error): its message says why
                    break
                done += len(chunk)
                on_bytes(done)
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0 or broken:
            line = one_line(_stderr_text(err), secrets=secrets)
            raise Unavailable(detail=f"{label}: {line}")
