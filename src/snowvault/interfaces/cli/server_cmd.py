"""``snowvault init``, ``snowvault server`` and ``snowvault run``: bootstrap and serve.

    snowvault init --data-dir DIR [--catalog-url URL] [--region R] [--port N] [--json]
                   [--allow-path DIR ...] [--deny-path DIR|PATTERN ...]
                   [--storage REGION=s3://BUCKET/PREFIX ...] [--public-endpoint URL]
    snowvault init --data-dir DIR --join FIRST_DIR [--port N] [--host H]
                   [--public-endpoint URL] [--trail-location URL] [--json]   # one more server
    snowvault server --data-dir DIR [--host H] [--port N] [--test-mode]
                     [--metrics-address HOST:PORT|off] [--log-format text|json]
    snowvault run --data-dir DIR [--port N]      # init if new, print the how-to, serve

These act locally (they are the server). The API is loaded by name
(``snowvault.interfaces.api.server:build_asgi``, as uvicorn loads apps) so the CLI never
imports the API package. ``snowvault.app`` (catalog, SQLAlchemy, services) is imported
inside each command, so registering these commands costs nothing for the others.
Must not depend on the web interface.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from snowvault.interfaces.cli import client, log_format, render

if TYPE_CHECKING:
    from snowvault import app as app_mod

ASGI_FACTORY = "snowvault.interfaces.api.server:build_asgi"
DEFAULT_PORT = 8765


def _data_dir_option(fn: Any) -> Any:
    return click.option(
        "--data-dir",
        required=True,
        type=click.Path(file_okay=False),
        help="The server's data directory (config.json, root.key, catalog, storage).",
    )(fn)


def _write_profile(result: app_mod.InitResult) -> Path:
    path = client.profile_path(os.environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "endpoint": result.endpoint,
        "region": result.region,
        "access_key_id": result.access_key_id,
        "secret_access_key": result.secret_access_key,
        "account_id": result.account_id,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
    os.chmod(path, 0o600)
    return path


def how_to(endpoint: str, region: str, key_id: str, secret: str) -> str:
    return "\n".join(
        [
            f"export AWS_ACCESS_KEY_ID={key_id}",
            f"export AWS_SECRET_ACCESS_KEY={secret}",
            f"export AWS_DEFAULT_REGION={region}",
            f"export AWS_ENDPOINT_URL={endpoint}",
        ]
    )


def host_paths_line(config: app_mod.ServerConfig) -> str:
    """The host-path rule in one line (init, run), or a warning when nothing is allowed."""
    where = config.data_dir / "config.json"
    if not config.allowed_paths:
        return (
            "warning: no host paths are allowed (allowed_paths is empty or missing in "
            f"{where}): RegisterResource and restores are refused; add the roots to protect, "
            f'e.g. "allowed_paths": ["{Path.home()}"], there and restart the server'
        )
    rule = ", ".join(config.allowed_paths)
    if config.denied_paths:
        rule += f" (except {', '.join(config.denied_paths)})"
    return f"host paths allowed: {rule}; change with --allow-path at init or in {where}"


def command(name: str, executable: str | None = None, cwd: str | None = None) -> str | None:
    """How to type ``name`` in a shell: the path of this Python's environment's
    ``bin/name`` when it has one (``.venv/bin/name`` from the repository, whose venv is
    not on PATH), else ``name`` when it is on PATH, else None (not installed: ``make run``
    installs the runtime only, and awscli is a dev dependency)."""
    bin_dir = os.path.dirname(os.path.abspath(executable or sys.executable))
    candidate = os.path.join(bin_dir, name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        if shutil.which(name) == candidate:
            return name
        here = os.path.abspath(cwd or os.getcwd())
        inside = here != os.sep and candidate.startswith(here + os.sep)
        return os.path.relpath(candidate, here) if inside else candidate
    return name if shutil.which(name) else None


def _example(endpoint: str, executable: str | None = None, cwd: str | None = None) -> str:
    """Copy-paste commands: only binaries that exist, with the path that reaches them."""
    lines = ["# then, for example:"]
    aws = command("aws", executable, cwd)
    if aws is not None:
        lines.append(f"{aws} backup list-backup-vaults --endpoint-url {endpoint}")
    snowvault = command("snowvault", executable, cwd) or "snowvault"
    lines += [f"{snowvault} vault create my-vault", f"{snowvault} vault list"]
    return "\n".join(lines)


PORT = click.IntRange(1, 65535)


def metrics_address_option(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> str | None:
    """``--metrics-address``: ``off``, empty (the API endpoint), or ``HOST:PORT`` with a
    port of 1-65535 (``:PORT`` and ``[::1]:PORT`` too); anything else is refused here,
    before the catalog is opened or a port bound."""
    if value is None or value.strip() in ("", "off"):
        return value
    _, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (a port of 1-65535) or 'off'")
    return value


@click.command("init")
@_data_dir_option
@click.option("--catalog-url", help="SQLAlchemy URL of the catalog (default: DIR/catalog.db).")
@click.option("--region", default="us-east-1", show_default=True, help="The home region.")
@click.option("--port", type=PORT, default=DEFAULT_PORT, show_default=True)
@click.option("--no-profile", is_flag=True, help="Do not write the client profile.")
@click.option(
    "--allow-path",
    "allow_paths",
    multiple=True,
    metavar="DIR",
    help="A host tree resources and restores may name (repeatable; default: your home "
    "directory except its hidden entries ~/.*). Stored as allowed_paths in config.json.",
)
@click.option(
    "--deny-path",
    "deny_paths",
    multiple=True,
    metavar="DIR|PATTERN",
    help="Refused inside the allowed trees (repeatable; a root or a pattern such as "
    "'/home/*/.ssh'). Stored as denied_paths in config.json.",
)
@click.option(
    "--storage",
    "storage",
    multiple=True,
    metavar="REGION=LOCATION",
    help="Where a region's vaults live: s3://bucket/prefix (endpoint and credentials from "
    "the server's environment) or a directory (repeatable; default for the home region: "
    "DIR/storage/REGION). A fleet of servers needs S3.",
)
@click.option(
    "--public-endpoint",
    metavar="URL",
    help="The URL clients reach the service at, when it is not this server's own address "
    "(several servers behind one endpoint).",
)
@click.option(
    "--join",
    "join_dir",
    type=click.Path(file_okay=False, exists=True),
    metavar="FIRST_DIR",
    help="Make DIR one more server of the fleet of FIRST_DIR (the first server's data "
    "directory, or a copy of its config.json, root.key and sns-signing.*): same "
    "PostgreSQL catalog, S3 vaults and root key; nothing new in the catalog. "
    "See docs/operations/scale-out.md.",
)
@click.option("--host", default=None, help="With --join: the address this server listens on.")
@click.option(
    "--trail-location",
    metavar="URL",
    help="With --join: this server's own s3:// trail prefix (needed when FIRST_DIR delivers "
    "its trail to S3).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(
    data_dir: str,
    catalog_url: str | None,
    region: str,
    port: int,
    no_profile: bool,
    allow_paths: tuple[str, ...],
    deny_paths: tuple[str, ...],
    storage: tuple[str, ...],
    public_endpoint: str | None,
    join_dir: str | None,
    host: str | None,
    trail_location: str | None,
    as_json: bool,
) -> None:
    """Create a data directory: catalog, root account, root access key pair.

    The data directory and its storage can never be registered or restored into, whatever
    --allow-path says. With --join, a data directory for one more server of a fleet.
    """
    from snowvault import app as app_mod

    if join_dir is not None:
        given = click.get_current_context().get_parameter_source
        clash = [
            f"--{name.replace('_', '-')}"
            for name in ("catalog_url", "region", "allow_paths", "deny_paths", "storage")
            if given(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if clash:
            raise click.UsageError(
                f"--join takes these from FIRST_DIR's config.json: drop {', '.join(clash)}"
            )
        _join(data_dir, join_dir, host, port, public_endpoint, trail_location, as_json)
        return
    if host is not None or trail_location is not None:
        raise click.UsageError("--host and --trail-location go with --join")
    result = app_mod.initialize(
        data_dir,
        catalog_url=catalog_url,
        region=region,
        port=port,
        allowed_paths=allow_paths or None,
        denied_paths=deny_paths,
        storage=_storage_map(storage),
        public_endpoint=public_endpoint,
    )
    profile = None if no_profile else _write_profile(result)
    config = app_mod.ServerConfig.load(data_dir)
    doc = {
        "account_id": result.account_id,
        "region": result.region,
        "access_key_id": result.access_key_id,
        "secret_access_key": result.secret_access_key,
        "endpoint": result.endpoint,
        "allowed_paths": list(config.allowed_paths),
        "denied_paths": list(config.denied_paths),
    }
    text = how_to(result.endpoint, result.region, result.access_key_id, result.secret_access_key)
    if profile is not None:
        text += f"\n# (also saved for the snowvault CLI in {profile})"
    text += f"\n# {host_paths_line(config)}\n{_example(result.endpoint)}"
    render.result(as_json, doc, f"# snowvault account {result.account_id}\n{text}")


def _storage_map(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        region, sep, location = item.partition("=")
        if not sep or not region or not location:
            raise click.BadParameter(f"{item!r}: expected REGION=LOCATION", param_hint="--storage")
        if region in out:
            raise click.BadParameter(f"{region} given twice", param_hint="--storage")
        out[region] = location
    return out


def _join(
    data_dir: str,
    join_dir: str,
    host: str | None,
    port: int,
    public_endpoint: str | None,
    trail_location: str | None,
    as_json: bool,
) -> None:
    from snowvault import app as app_mod

    port_given = click.get_current_context().get_parameter_source("port")
    result = app_mod.join(
        data_dir,
        join_dir,
        host=host,
        port=port if port_given is click.core.ParameterSource.COMMANDLINE else None,
        trail_location=trail_location,
        public_endpoint=public_endpoint,
    )
    config = app_mod.ServerConfig.load(result.data_dir)
    doc = {
        "data_dir": str(result.data_dir),
        "listen": f"http://{config.host}:{config.port}",
        "endpoint": result.endpoint,
        "copied": list(result.copied),
    }
    text = (
        f"# {result.data_dir} joined the fleet of {Path(join_dir).absolute()} "
        f"(copied {', '.join(result.copied) or 'nothing'}); start it with\n"
        f"snowvault server --data-dir {result.data_dir}   # listens on {doc['listen']}"
    )
    key, cert = app_mod.SIGNING_FILES
    if key not in result.copied:
        text += (
            f"\n# warning: {join_dir} has no {key}: copy it and {cert} here, or "
            "notifications are signed with another key on each server"
        )
    render.result(as_json, doc, text)


def _serve(app: app_mod.App, host: str, port: int) -> None:
    import uvicorn
    from uvicorn.importer import import_from_string

    build_asgi = import_from_string(ASGI_FACTORY)
    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from 127.0.0.1
    # as the client address; the API decides that itself (trusted_proxies in config.json).
    config = uvicorn.Config(
        build_asgi(app),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        ws="none",
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            click.echo(f"snowvault listening on http://{host}:{port}")
            sys.stdout.flush()

    threading.Thread(target=announce, name="announce", daemon=True).start()
    app.worker.start()
    app.scheduler.start()
    app.notifier.start()
    try:
        server.run()
    finally:
        app.close()


def _logging(fmt: str = "text") -> None:
    if fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(log_format.JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        return
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@click.command("server")
@_data_dir_option
@click.option("--host", default=None, help="Address to listen on (default: from config).")
@click.option("--port", type=PORT, default=None, help="Port (default: from config).")
@click.option("--test-mode", is_flag=True, help="Serve POST /_snowvault/reset (tests only).")
@click.option(
    "--metrics-address",
    default=None,
    metavar="HOST:PORT|off",
    callback=metrics_address_option,
    help="Serve /metrics on its own listener, or 'off' (default: metrics_address in "
    "config.json; empty there: on the API endpoint).",
)
@click.option(
    "--log-format",
    "log_fmt",
    type=click.Choice(log_format.FORMATS),
    default=None,
    help="Server log lines as text or one JSON object each (default: log_format in "
    "config.json, else text).",
)
def server(
    data_dir: str,
    host: str | None,
    port: int | None,
    test_mode: bool,
    metrics_address: str | None,
    log_fmt: str | None,
) -> None:
    """Serve the AWS Backup API with the embedded worker."""
    import dataclasses

    from snowvault import app as app_mod

    config = app_mod.ServerConfig.load(data_dir)
    _logging(log_fmt or config.log_format)
    app = app_mod.build(data_dir, test_mode=test_mode, serving=True)
    if metrics_address is not None:
        app.config = dataclasses.replace(app.config, metrics_address=metrics_address)
    if not app.config.allowed_paths:
        click.echo(host_paths_line(app.config), err=True)
    _serve(app, host or app.config.host, port or app.config.port)


@click.command("run")
@_data_dir_option
@click.option("--port", type=PORT, default=None, help="Port (default: from config, or 8765).")
def run(data_dir: str, port: int | None) -> None:
    """Initialise DIR if it is new, print how to use the server, and serve."""
    from snowvault import app as app_mod

    if not app_mod.is_initialized(data_dir):
        result = app_mod.initialize(data_dir, port=port or DEFAULT_PORT)
        _write_profile(result)
        click.echo(f"initialised {Path(data_dir).absolute()} (account {result.account_id})")
    _logging()
    app = app_mod.build(data_dir, serving=True)
    host, port = app.config.host, port or app.config.port
    endpoint = f"http://{host}:{port}"
    creds = app.root_credentials()
    click.echo(
        how_to(endpoint, app.config.default_region, creds.access_key_id, creds.secret_access_key)
    )
    click.echo(_example(endpoint))
    click.echo(host_paths_line(app.config))
    _serve(app, host, port)


COMMANDS = (init, server, run)
