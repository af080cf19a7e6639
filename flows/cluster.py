"""Where the observations run: threads here, a Dask cluster, or a batch system's jobs.

``task_runner: threads`` runs them on this machine; ``dask`` on a Dask ``LocalCluster`` of
worker processes, or on the scheduler of ``dask_address``; ``dask`` with ``cluster: slurm``
(``pbs``, ``sge``, ``htcondor``, ``lsf``, ``oar``, ``moab``) on dask-jobqueue's cluster of
that batch system: the flow's process runs the Dask scheduler, and the workers are batch
jobs, submitted as observations wait and cancelled when they are done (adaptive scaling).

The cluster is described the way dask-jobqueue users already describe it, in dask's own
config: a ``jobqueue.<cluster>`` section (``cores``, ``memory``, ``walltime``, ``queue``,
``job-script-prologue``, ...) and ``distributed.adaptive`` (``minimum``, ``maximum``
workers), from dask's usual files (``~/.config/dask/jobqueue.yaml``, ``DASK_CONFIG``) or,
on top of them, the file ``cluster_config`` names. Nothing of it is repeated here: every
knob is dask-jobqueue's, documented there.

Each worker runs its observations with its own machine's view (:func:`on_this_node`): the
SAS slot folder of its own environment (``DAXA_XMM_SLOTS_DIR``, so ``num_cores`` caps the
SAS processes of each node, or of each job), and the SAS set-up of its own environment
when it has one (a job prologue sourcing ``setsas.sh``).
"""

from __future__ import annotations

__all__ = ["task_runner_for", "jobqueue_class", "start_jobqueue", "dask_settings", "on_this_node"]

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daxa_xmm.config import ProcessingConfig, read_config_file
from daxa_xmm.errors import ConfigError
from daxa_xmm.pipeline.step_run import _FORWARD_ENV as SAS_SETUP_ENV
from daxa_xmm.pipeline.step_run import ObsContext, slots_root


def jobqueue_class(cluster: str) -> str:
    """The qualified name of dask-jobqueue's cluster class whose config section is ``cluster``
    (``slurm`` -> ``dask_jobqueue.SLURMCluster``).

    Raises:
        ValueError: no dask-jobqueue cluster has that config name.
    """
    import dask_jobqueue

    for name in dir(dask_jobqueue):
        cls = getattr(dask_jobqueue, name)
        job = getattr(cls, "job_cls", None)  # (the base class has none)
        if isinstance(cls, type) and issubclass(cls, dask_jobqueue.JobQueueCluster) and getattr(job, "config_name", None) == cluster:
            return f"dask_jobqueue.{name}"
    raise ValueError(f"cluster: dask-jobqueue has no cluster {cluster!r}")


def start_jobqueue(jobqueue: str, **kwargs: Any) -> Any:
    """dask-jobqueue's cluster of batch system ``jobqueue``, its first worker job submitted.

    The job is submitted here, and waited for only until the batch system has taken it (not
    until it runs): a job the batch system refuses (an unknown queue, too long a walltime,
    no ``sbatch`` on PATH) fails the run at once, saying why, where dask-jobqueue would
    only log the refusal and ask again, forever, while the run waits for a worker.

    Raises:
        ConfigError: the batch system refused the job, with what its submit command said.
    """
    from prefect.utilities.importtools import from_qualified_name

    cls = from_qualified_name(jobqueue_class(jobqueue))
    cluster = cls(**kwargs)
    try:
        # what scale(jobs=1) does, but with the submission awaited here, not in a callback
        # that only logs its failure: one job's spec, then SpecCluster's step that starts it
        cluster.worker_spec.update(cluster.new_worker_spec())
        cluster.sync(cluster._correct_state)
    except (RuntimeError, OSError) as exc:
        with contextlib.suppress(Exception):  # (a job never submitted fails SpecCluster's close)
            cluster.close()
        said = "; ".join(str(exc).rpartition("stderr:")[2].split("\n")).strip("; ") or str(exc)
        raise ConfigError(f"cluster: the first worker job was refused ({cls.job_cls.submit_command} said: {said}); "
                          f"check the jobqueue.{jobqueue} settings (cluster_config, or dask's config)") from None
    return cluster


def _flat(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"jobqueue": {"slurm": {"cores": 4}}}`` -> ``{"jobqueue.slurm.cores": 4}``: what
    ``dask.config.set`` merges key by key (a nested value would replace a whole section,
    dask-jobqueue's defaults of the other batch systems with it)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@contextmanager
def dask_settings(path: Path | None) -> Iterator[None]:
    """Dask's config with the settings of the file at ``path`` on top, while the block runs.

    A job is made from the config when it is submitted (dask-jobqueue reads it then, not
    when the cluster starts), so it holds for the cluster's whole life.
    """
    import dask.config
    import dask_jobqueue  # noqa: F401 - its defaults join dask's config first: leaving the block
    # takes away what it added, and a section first made inside it would go whole

    if path is None:
        yield
        return
    with dask.config.set(_flat(read_config_file(path))):
        yield


@contextmanager
def task_runner_for(config: ProcessingConfig) -> Iterator[Any]:
    """The task runner the config asks for, started; stopped (its jobs cancelled) on exit."""
    runner: Any
    if config.task_runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        runner = ThreadPoolTaskRunner(max_workers=config.observations_at_once())
        with runner:
            yield runner
        return
    from prefect_dask import DaskTaskRunner

    if config.dask_address:
        runner = DaskTaskRunner(address=config.dask_address)
    elif config.cluster is None:
        workers = config.observations_at_once()
        # the dashboard (and /health) on any free port, logged by prefect-dask: dask's fixed
        # 8787 is often taken on a shared machine (another run, a notebook's cluster)
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                                "dashboard_address": ":0"})
    else:
        import dask.config

        with dask_settings(config.cluster_config):
            # always adaptive: a batch queue's jobs are asked for as observations wait and
            # given back when none is left; a fixed n jobs is minimum = maximum = n
            adapt = {"minimum": dask.config.get("distributed.adaptive.minimum"),
                     "maximum": dask.config.get("distributed.adaptive.maximum")}
            runner = DaskTaskRunner(cluster_class=start_jobqueue,  # type: ignore[arg-type] # takes kwargs
                                    cluster_kwargs={"jobqueue": config.cluster},
                                    adapt_kwargs=adapt)
            with runner:
                yield runner
        return
    with runner:
        yield runner


def on_this_node(ctx: ObsContext) -> ObsContext:
    """``ctx`` as the process that runs the observation sees its own machine.

    The context is made where the flow runs and shipped to the worker. There, the SAS slot
    folder is the worker's own (its ``DAXA_XMM_SLOTS_DIR``, else its temporary folder):
    ``num_cores`` is a cap of the machine (or batch job) the SAS processes run on. And a
    worker whose environment has SAS set up (``SAS_DIR``, as a job prologue's ``setsas.sh``
    leaves it) runs SAS with that environment; one without gets the variables the flow's
    process forwarded (its ``PATH``, ``SAS_DIR``, ``SAS_CCFPATH``...). In the flow's own
    process (threads), and in a ``LocalCluster``'s workers, which inherit its environment,
    nothing changes.
    """
    extra = ctx.extra_env
    if os.environ.get("SAS_DIR"):
        extra = {key: value for key, value in extra.items() if key not in SAS_SETUP_ENV}
    return dataclasses.replace(ctx, slots_root=slots_root(), extra_env=extra)
