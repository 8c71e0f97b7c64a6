"""The end-to-end harness itself: what its gateways rely on."""

from __future__ import annotations

from integration.harness import free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    """500 draws from ~28 000 ephemeral ports repeat one ~99 % of the time when nothing
    prevents it; one mitmdump given the same port twice refuses to start."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
