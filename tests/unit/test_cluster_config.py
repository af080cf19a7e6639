"""The cluster settings (``cluster``, ``cluster_config``) and where a worker's SAS set-up comes from.

No batch system here: tests/cluster/ runs a real Slurm and real Dask processes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_args

import pytest
import yaml

from daxa_xmm.config import ClusterName, ProcessingConfig
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.step_run import ObsContext
from flows.cluster import dask_settings, jobqueue_class, on_this_node


def _config(tmp_path: Path, **kw: object) -> ProcessingConfig:
    (tmp_path / "archive").mkdir(exist_ok=True)
    return ProcessingConfig(archive=tmp_path / "archive", **kw)


def test_every_cluster_name_is_a_dask_jobqueue_cluster_of_that_config_name() -> None:
    import dask_jobqueue
    from prefect.utilities.importtools import from_qualified_name

    for name in get_args(ClusterName):
        cls = from_qualified_name(jobqueue_class(name))
        assert issubclass(cls, dask_jobqueue.JobQueueCluster) and cls.job_cls.config_name == name
    assert jobqueue_class("slurm") == "dask_jobqueue.SLURMCluster"
    with pytest.raises(ValueError, match="no cluster 'nope'"):
        jobqueue_class("nope")


@pytest.mark.parametrize(("settings", "message"), [
    ({"cluster": "slurm"}, "set task_runner to dask"),
    ({"cluster": "slurm", "task_runner": "dask", "dask_address": "tcp://h:8786"}, "leave dask_address out"),
    ({"cluster_config": "jobqueue.yaml", "task_runner": "dask"}, "name its batch system"),
    ({"cluster": "slurm", "task_runner": "dask", "cluster_config": "missing.yaml"}, "missing.yaml"),
    ({"cluster": "torque", "task_runner": "dask"}, "slurm"),
])
def test_contradictory_or_unreadable_cluster_settings_are_refused(tmp_path: Path, settings: dict, message: str) -> None:
    (tmp_path / "jobqueue.yaml").write_text("jobqueue: {slurm: {cores: 1}}\n")
    settings = {k: (str(tmp_path / v) if k == "cluster_config" else v) for k, v in settings.items()}
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **settings)


def test_a_cluster_config_is_dask_config_on_top_of_dasks_own_while_the_block_runs(tmp_path: Path) -> None:
    import dask.config

    path = tmp_path / "jobqueue.yaml"
    path.write_text(yaml.safe_dump({"jobqueue": {"slurm": {"cores": 8, "job-script-prologue": ["source setsas.sh"]}},
                                    "distributed": {"adaptive": {"maximum": 4}}}))
    config = _config(tmp_path, cluster="slurm", task_runner="dask", cluster_config=path)
    assert config.cluster_config == path
    with dask_settings(path):
        assert dask.config.get("jobqueue.slurm.cores") == 8
        assert dask.config.get("jobqueue.slurm.job_script_prologue") == ["source setsas.sh"]
        assert dask.config.get("distributed.adaptive.maximum") == 4
        # a section's other settings (and the other batch systems') keep dask-jobqueue's defaults
        assert dask.config.get("jobqueue.slurm.walltime") == "00:30:00"
        assert dask.config.get("jobqueue.pbs.walltime") == "00:30:00"
    assert dask.config.get("jobqueue.slurm.cores") is None
    assert dask.config.get("jobqueue.slurm.walltime") == "00:30:00"


def _ctx(tmp_path: Path, extra: dict[str, str]) -> ObsContext:
    return ObsContext(layout=ArchiveLayout(tmp_path / "archive", tmp_path / "out"), obsid="0123456789",
                      sas_version="22.1.0", num_cores=2, slots_root=tmp_path / "flow-slots", extra_env=extra)


def test_a_worker_uses_its_own_slot_folder_and_its_own_sas_when_it_has_one(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    flow_env = {"PATH": "/login/sas/bin:/usr/bin", "SAS_DIR": "/login/sas", "SAS_CCFPATH": "/login/ccf"}
    ctx = _ctx(tmp_path, flow_env)
    monkeypatch.setenv("DAXA_XMM_SLOTS_DIR", str(tmp_path / "node-slots"))
    monkeypatch.setenv("SAS_DIR", "/node/sas")  # the job prologue set SAS up
    here = on_this_node(ctx)
    assert here.slots_root == tmp_path / "node-slots"
    assert here.extra_env == {}  # the node's PATH, SAS_DIR and SAS_CCFPATH, not the login node's
    assert dataclasses.replace(here, slots_root=ctx.slots_root, extra_env=ctx.extra_env) == ctx  # nothing else changed

    monkeypatch.delenv("SAS_DIR")  # a worker without SAS of its own gets the flow's
    assert on_this_node(ctx).extra_env == flow_env
