"""The one-node Slurm of the cluster tests, started once per test process (tests/cluster/slurm.py)."""

from __future__ import annotations

import pytest

from tests.cluster.slurm import SlurmCluster, missing, start_slurm


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A running Slurm (munged, slurmctld, slurmd) of one node; skips saying why without one.

    Installed but unable to start is a failure, with the daemons' logs: that is not a
    machine without Slurm.
    """
    why = missing()
    if why:
        pytest.skip(why)
    cluster: SlurmCluster = start_slurm(tmp_path_factory.mktemp("slurm"))
    yield cluster
    cluster.stop()
