"""The network-reach rule from the attacker's side: a caller with RegisterResource names a
host; the server may connect only when every address it resolves to is allowed, and a
refused host is decided before any connection (the resolver is the only thing asked)."""

from __future__ import annotations

import doctest
import socket
from typing import Any

import pytest

from snowvault import app
from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import InvalidInput, PermissionDenied
from snowvault.plugins import errors as plugin_errors

LOOPBACK = host_paths.Policy()  # the default networks: 127.0.0.0/8 and ::1/128


class Resolver:
    """A fake getaddrinfo: a table of names, recording every lookup."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        self.asked.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.table[host]
        ]


def test_the_default_allows_loopback_only() -> None:
    resolve = Resolver({"localhost": ["127.0.0.1", "::1", "127.0.0.1"], "db": ["10.0.0.5"]})
    assert net_reach.check("localhost", 5432, LOOPBACK, resolve) == ["127.0.0.1", "::1"]
    with pytest.raises(net_reach.NetworkRefused) as err:
        net_reach.check("db", 5432, LOOPBACK, resolve)
    assert str(err.value) == (
        "network host 'db' is refused: it resolves to 10.0.0.5, which is not in an allowed "
        "network (allowed: 127.0.0.0/8, ::1/128; the server's allowed_networks in config.json)"
    )
    assert isinstance(err.value, PermissionDenied)  # AccessDeniedException, exit 6
    assert plugin_errors.NetworkRefused is net_reach.NetworkRefused


def test_one_refused_address_refuses_the_whole_name() -> None:
    policy = host_paths.Policy.build([], [], [], str, ["10.0.0.0/8"])
    resolve = Resolver({"split": ["10.1.1.1", "169.254.169.254"]})
    with pytest.raises(net_reach.NetworkRefused, match=r"169\.254\.169\.254"):
        net_reach.check("split", 6379, policy, resolve)


@pytest.mark.parametrize(
    "address",
    ["::ffff:169.254.169.254", "169.254.169.254", "0.0.0.0", "::", "fe80::1%eth0", "10.0.0.1"],
)
def test_metadata_services_and_wildcards_are_refused_by_default(address: str) -> None:
    with pytest.raises(net_reach.NetworkRefused):
        net_reach.check("h", 80, LOOPBACK, Resolver({"h": [address]}))


def test_an_ipv4_mapped_address_is_judged_as_ipv4() -> None:
    assert net_reach.check("h", 80, LOOPBACK, Resolver({"h": ["::ffff:127.0.0.1"]})) == [
        "::ffff:127.0.0.1"
    ]


def test_configured_networks_and_bad_ones() -> None:
    policy = host_paths.Policy.build([], [], [], str, ["192.168.10.0/24", "fd00::/8"])
    resolve = Resolver({"nas": ["192.168.10.7", "fd00::7"]})
    assert net_reach.check("nas", 9000, policy, resolve) == ["192.168.10.7", "fd00::7"]
    with pytest.raises(net_reach.NetworkRefused):  # loopback is no longer implied
        net_reach.check("127.0.0.1", 9000, policy, Resolver({"127.0.0.1": ["127.0.0.1"]}))
    with pytest.raises(InvalidInput, match="allowed_networks"):
        host_paths.Policy.build([], [], [], str, ["not-a-net"])
    assert host_paths.Policy.build([], [], [], str, []).networks == ()


@pytest.mark.parametrize(
    ("host", "port"),
    [("", 5432), ("a/b", 1), ("user@h", 1), ("h\x00", 1), ("h", 0), ("h", 70000), (None, 1)],
)
def test_malformed_hosts_and_ports_never_reach_the_resolver(host: Any, port: Any) -> None:
    resolve = Resolver({})
    with pytest.raises(InvalidInput):
        net_reach.check(host, port, LOOPBACK, resolve)
    assert resolve.asked == []


def test_an_unresolvable_name_is_invalid_input_not_a_crash() -> None:
    resolve = Resolver({})
    with pytest.raises(InvalidInput, match="does not resolve"):
        net_reach.check("nowhere.invalid", 5432, LOOPBACK, resolve)
    assert resolve.asked == [("nowhere.invalid", 5432)]


def test_the_real_resolver_on_a_literal() -> None:
    assert net_reach.check("127.0.0.1", 5432, LOOPBACK) == ["127.0.0.1"]
    assert net_reach.check("[::1]", 5432, LOOPBACK) == ["::1"]


def test_module_doctests() -> None:
    assert doctest.testmod(net_reach).failed == 0
    assert doctest.testmod(host_paths).failed == 0


def test_config_json_allowed_networks_reach_the_policy(tmp_path: Any) -> None:
    doc = {"catalog_url": "sqlite://", "regions": {"r": str(tmp_path)}, "default_region": "r"}
    unset = app.ServerConfig.from_dict(tmp_path, doc)
    assert app.host_path_rule(unset).networks == host_paths.DEFAULT_NETWORKS
    assert "allowed_networks" not in unset.to_dict()
    config = app.ServerConfig.from_dict(tmp_path, dict(doc, allowed_networks=["10.0.0.0/8"]))
    assert [str(n) for n in app.host_path_rule(config).networks] == ["10.0.0.0/8"]
    again = app.ServerConfig.from_dict(tmp_path, config.to_dict())
    assert again.allowed_networks == ("10.0.0.0/8",)
    with pytest.raises(InvalidInput, match="allowed_networks"):
        app.host_path_rule(app.ServerConfig.from_dict(tmp_path, dict(doc, allowed_networks=["x"])))
