"""The host-path rule: allowed roots, denied roots and patterns, the protected data dir,
resolution through the ``realpath`` passed in (a table of links stands in for the disk)."""

from __future__ import annotations

import posixpath

import pytest

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, PermissionDenied

HOME = "/home/u"
DATA = "/home/u/.local/share/snowvault"
STORAGE = "/srv/vaults"  # a region's storage outside the data dir

LINKS = {
    "/home/u/link-to-data": DATA + "/storage",
    "/home/u/link-to-etc": "/etc",
    "/home/u/link-to-photos": "/home/u/photos",
    "/aliased": "/home/u",
}


def fake_realpath(path: str) -> str:
    """Follows LINKS on every leading component, like os.path.realpath on that tree."""
    parts = [p for p in posixpath.normpath(path).split("/") if p]
    resolved = "/"
    for part in parts:
        resolved = posixpath.join(resolved, part)
        for _ in range(10):
            if resolved not in LINKS:
                break
            resolved = LINKS[resolved]
    return resolved


@pytest.fixture
def policy() -> host_paths.Policy:
    allowed, denied = host_paths.default_rule(HOME)
    return host_paths.Policy.build(
        [*allowed, "/data"],
        [*denied, "/data/*/secret", "/data/private"],
        [DATA, STORAGE],
        fake_realpath,
    )


def check(path: object, policy: host_paths.Policy) -> str:
    return host_paths.check(path, policy, fake_realpath)


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/home/u/photos", "/home/u/photos"),
        ("/home/u/photos/2026/", "/home/u/photos/2026"),
        ("/home/u/a/../photos", "/home/u/photos"),
        ("/home/u/link-to-photos/x", "/home/u/photos/x"),
        ("/aliased/photos", "/home/u/photos"),
        ("/home/u/not.hidden", "/home/u/not.hidden"),
        ("/data/team/public", "/data/team/public"),
        ("/data/privately/x", "/data/privately/x"),
        ("//home/u/photos", "/home/u/photos"),
    ],
)
def test_allowed_paths_come_back_resolved(
    policy: host_paths.Policy, path: str, resolved: str
) -> None:
    assert check(path, policy) == resolved


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/", "it contains the snowvault data directory or a vault storage location"),
        ("/home", "it contains the snowvault data directory"),
        (HOME, "it contains the snowvault data directory"),
        (DATA, "it is inside the snowvault data directory"),
        (DATA + "/storage/us-east-1/111122223333", "it is inside the snowvault data directory"),
        ("/home/u/.local", "it contains the snowvault data directory"),
        (STORAGE + "/acct", "it is inside the snowvault data directory or a vault storage"),
        ("/srv", "it contains the snowvault data directory or a vault storage"),
        ("/etc", "it is not under an allowed path (allowed: /home/u, /data;"),
        ("/root", "it is not under an allowed path"),
        ("/home/u/../other", "it resolves to '/home/other', which is not under an allowed"),
        ("/home/u/link-to-etc/cron.d", "it resolves to '/etc/cron.d', which is not under"),
        ("/home/u/link-to-data", "which is inside the snowvault data directory"),
        ("/home/u/.ssh", "it is under the denied path /home/u/.*"),
        ("/home/u/.ssh/authorized_keys", "it is under the denied path /home/u/.*"),
        ("/data/private/x", "it is under the denied path /data/private"),
        ("/data/team/secret/x", "it is under the denied path /data/*/secret"),
        ("/data/team", "it contains the denied path /data/*/secret"),
        ("/data", "it contains the denied path /data/*/secret"),
    ],
)
def test_refusals_name_the_rule(policy: host_paths.Policy, path: str, reason: str) -> None:
    with pytest.raises(host_paths.PathRefused) as caught:
        check(path, policy)
    assert isinstance(caught.value, PermissionDenied)
    assert str(caught.value).startswith(f"host path {path!r} is refused: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("relative/dir", "must be an absolute path"),
        ("", "must be an absolute path"),
        ("/home/u/a\x00b", "contains a NUL byte"),
        (None, "must be a string"),
        (["/home/u"], "must be a string"),
        (b"/home/u", "must be a string"),
    ],
)
def test_malformed_paths_are_invalid_input(
    policy: host_paths.Policy, path: object, detail: str
) -> None:
    with pytest.raises(host_paths.InvalidHostPath, match=detail) as caught:
        check(path, policy)
    assert isinstance(caught.value, InvalidInput)


def test_nothing_is_allowed_by_default() -> None:
    with pytest.raises(host_paths.PathRefused, match=r"allowed: none"):
        host_paths.check("/home/u", host_paths.NOTHING_ALLOWED, fake_realpath)


def test_the_data_dir_wins_over_an_allowed_root_that_names_it() -> None:
    policy = host_paths.Policy.build(["/", DATA], [], [DATA], fake_realpath)
    assert check("/home/u/photos", policy) == "/home/u/photos"
    for path in (DATA, DATA + "/root.key", "/", "/home/u"):
        with pytest.raises(host_paths.PathRefused, match="snowvault data directory"):
            check(path, policy)


def test_configured_roots_are_resolved_too() -> None:
    policy = host_paths.Policy.build(["/aliased"], ["/aliased/.*"], [], fake_realpath)
    assert [e.text for e in policy.allowed] == ["/home/u"]
    assert [e.text for e in policy.denied] == ["/home/u/.*"]
    assert check("/home/u/x", policy) == "/home/u/x"
    with pytest.raises(host_paths.PathRefused, match="denied"):
        check("/aliased/.gnupg", policy)
    with pytest.raises(host_paths.InvalidHostPath, match="absolute"):
        host_paths.Policy.build(["relative"], [], [], fake_realpath)


def test_resolve_is_lexical_with_normpath() -> None:
    assert host_paths.resolve("/a/./b/../c//d/", posixpath.normpath) == "/a/c/d"
    assert host_paths.resolve("/home/u/link-to-etc", posixpath.normpath) == "/home/u/link-to-etc"
    assert host_paths.resolve("/home/u/link-to-etc", fake_realpath) == "/etc"


def test_describe_and_default_rule() -> None:
    assert host_paths.default_rule("/root/") == (["/root"], ["/root/.*"])
    assert host_paths.default_rule("/") == host_paths.default_rule("relative") == ([], [])
    allowed, denied = host_paths.default_rule("/root")
    rule = host_paths.Policy.build(allowed, denied, [], fake_realpath)
    assert rule.describe() == "/root (except /root/.*)"
    assert host_paths.NOTHING_ALLOWED.describe() == "nothing"
