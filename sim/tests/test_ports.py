"""Servers' ports come from below the ephemeral range, where no client connection lands."""

import socket

from bridge_sim.ports import _ephemeral_floor, free_port


def test_a_port_below_the_ephemeral_range_that_can_be_bound():
    floor = _ephemeral_floor()
    ports = {free_port() for _ in range(20)}
    assert all(port < floor for port in ports)
    assert len(ports) > 1  # chosen at random, so two servers rarely ask for the same one
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports.pop()))
