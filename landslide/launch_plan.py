"""``dry_run=true``: what a command would launch, printed, with nothing run or submitted.

For a multirun, the jobs' overrides and, with ``hydra/launcher=slurm``
(hydra-submitit-launcher), the sbatch script it would submit: partition, account, QOS,
GPUs, CPUs, memory, time and array size, as SLURM would receive them, to check before
queueing hundreds of trainings. Neither submitit nor its Hydra plugin has a dry run; the
script is rendered here by submitit's own SLURM executor from the launcher's settings, as
the plugin would, so a setting submitit refuses fails here too.
"""

import logging
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from landslide.config import hydra_config_of
from landslide.sweeps import planned_overrides, sweep_dir

log = logging.getLogger(__name__)

#: The launcher settings submitit's executor takes at construction, not in the script.
_EXECUTOR_ARGS = ("_target_", "submitit_folder", "max_num_timeout")


def is_slurm(launcher: Mapping[str, Any]) -> bool:
    """Whether ``launcher`` (``hydra.launcher``) is hydra-submitit-launcher's SLURM one."""
    target = str(launcher.get("_target_", ""))
    return target.startswith("hydra_plugins.hydra_submitit_launcher") and target.endswith(
        "SlurmLauncher"
    )


def sbatch_script(launcher: Mapping[str, Any], jobs: int) -> str:
    """The sbatch script hydra-submitit-launcher submits for ``jobs`` jobs.

    ``launcher`` holds its resolved settings (``hydra.launcher``). They are translated as
    the plugin and submitit's ``AutoExecutor`` translate them (``timeout_min`` to
    ``--time``, ``mem_gb`` to ``--mem``, ``tasks_per_node`` to ``--ntasks-per-node``, ...);
    several jobs make one array, as the plugin submits a sweep.

    Raises:
        ValueError: a setting submitit does not know, or a value it refuses.
    """
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.slurm.slurm import SlurmExecutor

    class ScriptOnly(SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 1  # SlurmExecutor refuses to exist without srun; nothing is submitted

    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    given = {k: v for k, v in launcher.items() if v is not None and k not in _EXECUTOR_ARGS}
    executor = ScriptOnly(
        folder=str(launcher["submitit_folder"]),
        max_num_timeout=int(launcher.get("max_num_timeout") or 0),
    )
    # submitit's AutoExecutor renames the generic settings; the rest are sbatch's own.
    sbatch = executor._convert_parameters({k: v for k, v in given.items() if k in generic})
    sbatch.update({k: v for k, v in given.items() if k not in generic})
    executor.update_parameters(**sbatch)
    if jobs > 1:
        executor.parameters["map_count"] = jobs
    return str(executor._make_submission_file_text(executor._submitit_command_str, "dry-run"))


def launch_plan(config: DictConfig) -> str:
    """What the multirun of ``config`` would launch, as text."""
    jobs = planned_overrides(config)
    tree = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert isinstance(tree, dict)  # a DictConfig converts to a dict
    launcher = {str(k): v for k, v in tree.items()}
    folder = sweep_dir(config.hydra)
    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    lines = [f"# Dry run of {command}: nothing was run or submitted.", f"# Sweep folder: {folder}"]
    if jobs is None:
        lines.append("# Jobs: decided by the sweeper as it runs")
    else:
        lines.append(f"# Jobs ({len(jobs)}):")
        for number, overrides in enumerate(jobs):
            shown = [o for o in overrides if not o.startswith("dry_run=")]
            lines.append(f"#   {number}: {' '.join(shown) or '(no overrides)'}")
    if is_slurm(launcher):
        count = len(jobs) if jobs is not None else 1
        lines += [
            "# The sbatch script (one array task per job, SLURM_ARRAY_TASK_ID = the job):",
            "",
            sbatch_script(launcher, count),
        ]
    return "\n".join(lines)


class DryRun(Callback):
    """Hydra callback: with ``dry_run=true``, print what would be launched and stop.

    Listed before the sweep's MLflow callback, so no parent run is made either.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the sweep's jobs (and sbatch script) and exit."""
        if not OmegaConf.select(config, "dry_run", default=False):
            return
        with hydra_config_of(config):  # ${hydra:...} in the settings
            print(launch_plan(config), flush=True)
        raise SystemExit(0)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the one run's overrides and exit."""
        if not OmegaConf.select(config, "dry_run", default=False):
            return
        overrides: Sequence[str] = list(OmegaConf.select(config, "hydra.overrides.task") or [])
        print(f"# Dry run: one run, overrides: {' '.join(overrides) or '(none)'}", flush=True)
        raise SystemExit(0)
