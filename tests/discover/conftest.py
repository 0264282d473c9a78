from collections.abc import Iterator

import pytest

from bridge_sim.aws.moto_server import MotoServer
from tests.discover.estates import REGION
from tests.standins import ControlPlane, control_plane


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with control_plane(REGION) as plane:
        yield plane


@pytest.fixture
def server(plane: ControlPlane) -> MotoServer:
    return plane.moto
