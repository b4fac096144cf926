"""One real 4-node network on loopback for the whole security package, with some history on it;
always stopped afterwards."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import start_network
from tests.security.apifuzz import Seeded, seed


@pytest.fixture(scope="package")
def network(tmp_path_factory):
    net = start_network(tmp_path_factory.mktemp("secnet"))
    try:
        yield net
    finally:
        net.stop_all()


@pytest.fixture(scope="package")
def seeded(network) -> Seeded:
    return seed(network.directory, network.entries[0].api_url)
