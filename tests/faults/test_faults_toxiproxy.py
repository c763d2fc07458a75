"""Link faults through a real Toxiproxy, measured by a client through the proxy."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from faults.toxiproxy import ToxiproxyServer, toxics_for
from harness.errors import BadInput
from faultkit import listen_addr, round_trip


@pytest.fixture
def link(server: ToxiproxyServer, echo_port: int) -> Iterator[tuple[str, tuple[str, int]]]:
    server.create_proxy("link", f"127.0.0.1:{echo_port}")
    yield "link", listen_addr(server, "link")


def test_latency_both_directions_doubles_round_trip(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    base = round_trip(addr)
    names = server.add_toxics(name, "latency", {"latency_ms": 150, "jitter_ms": 0})
    assert len(names) == 2
    slow = round_trip(addr)
    server.remove_toxics(name, names)
    assert 0.28 < slow < 1.0, slow
    assert round_trip(addr) < base + 0.1


def test_latency_one_direction_adds_once(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    names = server.add_toxics(name, "latency", {"latency_ms": 150, "jitter_ms": 0, "direction": "upstream"})
    slow = round_trip(addr)
    server.remove_toxics(name, names)
    assert 0.14 < slow < 0.28, slow


def test_link_down_blocks_then_restores(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    server.set_enabled(name, False)
    with pytest.raises(OSError):
        round_trip(addr, timeout=1)
    server.set_enabled(name, True)
    assert round_trip(addr) < 0.5


def test_timeout_blackholes_traffic(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    names = server.add_toxics(name, "timeout", {"timeout_ms": 0})
    with pytest.raises((socket.timeout, TimeoutError)):
        round_trip(addr, timeout=0.5)
    server.remove_toxics(name, names)
    assert round_trip(addr) < 0.5


def test_reset_peer_resets_connection(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    names = server.add_toxics(name, "reset", {"timeout_ms": 0, "direction": "upstream"})
    with pytest.raises(OSError):
        round_trip(addr, timeout=2)
    server.remove_toxics(name, names)
    assert round_trip(addr) < 0.5


def test_bandwidth_slows_bulk_transfer(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    names = server.add_toxics(name, "bandwidth", {"rate_kbps": 50, "direction": "downstream"})
    took = round_trip(addr, payload=b"x" * 40_000)
    server.remove_toxics(name, names)
    assert took > 0.5, took  # 40 KB at 50 KB/s is about 0.8 s
    assert round_trip(addr, payload=b"x" * 40_000) < 0.3


def test_limit_data_closes_after_bytes(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    names = server.add_toxics(name, "limit-data", {"bytes": 100, "direction": "downstream"})
    with pytest.raises(OSError):
        round_trip(addr, payload=b"y" * 1000, timeout=2)
    server.remove_toxics(name, names)
    assert round_trip(addr, payload=b"y" * 1000) < 0.5


def test_slicer_cuts_into_small_chunks(server: ToxiproxyServer, link: tuple) -> None:
    name, addr = link
    names = server.add_toxics(name, "slicer", {"average_size": 10, "size_variation": 0,
                                               "delay_us": 20000, "direction": "downstream"})
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"z" * 100)
        time.sleep(0.05)
        first = s.recv(1000)
    server.remove_toxics(name, names)
    assert 0 < len(first) < 100, len(first)


def test_slow_close_and_toxicity_reach_the_server(server: ToxiproxyServer, link: tuple) -> None:
    name, _ = link
    names = server.add_toxics(name, "slow-close", {"delay_ms": 500, "toxicity": 0.5})
    toxics = {t["name"]: t for t in server.state()[name]["toxics"]}
    assert set(toxics) == set(names)
    assert all(t["toxicity"] == 0.5 and t["attributes"]["delay"] == 500 for t in toxics.values())
    server.heal([name])
    assert server.state()[name]["toxics"] in ([], None)


@pytest.mark.parametrize("fault,params,needle", [
    ("latency", {"latency_ms": -5}, "latency_ms must be >= 0"),
    ("latency", {"toxicity": 1.5}, "toxicity must be between 0 and 1"),
    ("latency", {"direction": "sideways"}, "both, upstream, downstream"),
    ("latency", {"latncy_ms": 5}, "valid: latency_ms, jitter_ms"),
    ("jitter", {}, "valid faults: latency, slow-link, bandwidth"),
])
def test_bad_params_name_the_valid_choices(fault: str, params: dict, needle: str) -> None:
    with pytest.raises(BadInput, match=needle):
        toxics_for(fault, params)


def test_unknown_proxy_lists_the_proxies(server: ToxiproxyServer, link: tuple) -> None:
    with pytest.raises(BadInput, match="proxies: link"):
        server.add_toxics("nope", "latency", {})
