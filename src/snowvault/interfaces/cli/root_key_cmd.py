"""``snowvault root-key``: offline maintenance of the server's root key.

    snowvault root-key rotate --data-dir DIR [--new-key-file PATH] [--json]
    snowvault root-key move --data-dir DIR --to PATH [--json]

Both act locally on DIR with the server stopped (refused while a server on this host
holds DIR/server.lock) and never print a key. ``rotate`` re-seals what the root key
seals in the catalog (access-key secrets, KMS key material) under a new key in one
transaction; vault data is not touched. See docs/operations/root-key.md.
``snowvault.app`` is imported inside each command, as in server_cmd. Must not depend on
the API or web interfaces.
"""

from __future__ import annotations

import click

from snowvault.interfaces.cli import render


def _data_dir(fn: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--data-dir",
        required=True,
        type=click.Path(file_okay=False, exists=True),
        help="The server's data directory (the server must be stopped).",
    )(fn)


@click.group("root-key")
def root_key() -> None:
    """The root key that seals access-key secrets and KMS key material (offline)."""


@root_key.command("rotate")
@_data_dir
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False),
    help="Write the new key here (and point config.json at it); required when "
    "SNOWVAULT_ROOT_KEY holds the key, and then written as hex.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rotate(data_dir: str, new_key_file: str | None, as_json: bool) -> None:
    """Replace the root key; vault data is not re-encrypted."""
    from snowvault import app as app_mod

    done = app_mod.rotate_root_key(data_dir, new_key_file=new_key_file)
    doc = {
        "key_file": str(done.key_file),
        "old_key_file": str(done.old_key_file) if done.old_key_file else None,
        "resealed_access_keys": done.resealed.access_keys if done.resealed else None,
        "resealed_kms_versions": done.resealed.kms_versions if done.resealed else None,
        "resealed_resource_secrets": done.resealed.resource_secrets if done.resealed else None,
        "finished_interrupted_rotation": done.resealed is None,
    }
    if done.resealed is None:
        lines = [f"finished an interrupted rotation: the new root key is in {done.key_file}"]
    else:
        lines = [
            f"root key rotated: re-sealed {done.resealed.access_keys} access key secret(s), "
            f"{done.resealed.kms_versions} KMS key version(s) and the secrets of "
            f"{done.resealed.resource_secrets} resource(s); vault data unchanged",
            f"new key: {done.key_file}",
        ]
    if done.from_env:
        lines.append(
            f"set SNOWVAULT_ROOT_KEY to the hex in {done.key_file} before starting the "
            "server, then destroy that file (or unset the variable and set root_key_file "
            "to it in config.json)"
        )
    if done.old_key_file:
        lines.append(
            f"the old key is kept in {done.old_key_file}: start the server, check it "
            "(e.g. list vaults, restore a file), then destroy that file (shred -u) and "
            "every backup copy of the old key"
        )
    render.result(as_json, doc, "\n".join(lines))


@root_key.command("move")
@_data_dir
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new key file (e.g. /etc/snowvault/root.key); must not exist.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def move(data_dir: str, to: str, as_json: bool) -> None:
    """Move the root key file (e.g. out of the data directory); config.json follows."""
    from snowvault import app as app_mod

    path = app_mod.move_root_key(data_dir, to)
    text = (
        f"root key moved to {path} (mode 0600; config.json root_key_file points there). "
        "Back it up separately from the data directory."
    )
    render.result(as_json, {"key_file": str(path)}, text)
