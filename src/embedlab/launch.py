"""How a training stage is started: plain ``python``, ``torchrun`` (DDP) or ``accelerate launch``.

Training stages in ``dvc.yaml`` run ``python stages/launch.py <stage script> [args]``; this module turns the
``launch`` params section into the command line of an existing engine (PyTorch's elastic launcher or
Accelerate) instead of a home-made scheduler. Inside the processes, :func:`rank` and :func:`world_size` read the
environment those launchers set, and :mod:`embedlab.io` writes outputs on rank 0 only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def rank() -> int:
    """Global rank of this process (0 outside a distributed launch)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Number of processes in the launch (1 outside a distributed launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank() == 0


def command(launch, script: str, args: list[str]) -> list[str] | None:
    """The argv that runs ``script`` under ``launch.launcher``; ``None`` means run it in this process."""
    if launch.launcher == "python":
        return None
    if launch.launcher == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={launch.nproc_per_node}"]
        if launch.nnodes == 1 and not launch.rdzv_endpoint:
            cmd.append("--standalone")
        else:
            cmd += [
                f"--nnodes={launch.nnodes}",
                f"--node_rank={launch.node_rank}",
                f"--rdzv_backend={launch.rdzv_backend}",
                f"--rdzv_endpoint={launch.rdzv_endpoint}",
                f"--rdzv_id={launch.rdzv_id}",
            ]
        return [*cmd, script, *args]
    # accelerate: the config file says how many processes/machines and which mixed precision
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.accelerate_config:
        cmd += ["--config_file", str(Path(launch.accelerate_config))]
    else:
        cmd += [f"--num_processes={launch.nproc_per_node}", f"--num_machines={launch.nnodes}"]
    return [*cmd, script, *args]
