"""damvad.extraction.ray_connect: a cluster address that cannot answer fails fast, with what to check."""

from __future__ import annotations

import time

import pytest

from damvad.extraction.ray_connect import check_cluster, check_reachable


def test_an_address_where_nothing_listens_fails_fast():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="no Ray cluster answers at 127.0.0.1:"):
        check_cluster(f"127.0.0.1:{port}")  # the TCP check: no handshake child is started
    assert time.monotonic() - t0 < 10
    check_reachable("auto")  # resolved by Ray itself
    check_cluster(None)  # a new local instance: nothing to check
    check_cluster("ray://head:10001")  # Ray Client: bounded by its own retries
