"""Scale out: training stages under torchrun (DDP on CPU with gloo) and the launcher command lines."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import dvc_env, make_repo, run

from embedlab.launch import command
from embedlab.params import LaunchParams


def test_python_launcher_runs_in_process():
    assert command(LaunchParams(), "stages/finetune.py", ["book"]) is None


def test_torchrun_single_node_and_multi_node_command_lines():
    one = command(LaunchParams(launcher="torchrun", nproc_per_node=8), "stages/finetune.py", ["improved"])
    assert one[1:] == [
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=8",
        "--standalone",
        "stages/finetune.py",
        "improved",
    ]
    multi = command(
        LaunchParams(launcher="torchrun", nproc_per_node=4, nnodes=2, node_rank=1, rdzv_endpoint="node0:29500"),
        "stages/finetune.py",
        ["improved"],
    )
    assert "--nnodes=2" in multi and "--node_rank=1" in multi and "--rdzv_endpoint=node0:29500" in multi
    assert "--standalone" not in multi


def test_accelerate_command_line(tmp_path):
    cfg = tmp_path / "accelerate.yaml"
    cfg.write_text("num_processes: 2\n")
    argv = command(LaunchParams(launcher="accelerate", accelerate_config=str(cfg)), "stages/x.py", [])
    assert argv[1:4] == ["-m", "accelerate.commands.launch", "--config_file"] and argv[-1] == "stages/x.py"


def test_multi_node_without_endpoint_is_rejected():
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        LaunchParams(launcher="torchrun", nnodes=2)


def finetune(repo: Path, launcher: str, nproc: int, batch_size: int) -> tuple[float, str]:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["launch"].update(launcher=launcher, nproc_per_node=nproc)
    params["finetune"]["recipes"]["book"].update(batch_size=batch_size, max_rows=96)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = run([sys.executable, "stages/launch.py", "stages/finetune.py", "book"], repo, env=dvc_env())
    losses = re.findall(r"train loss (\d+\.\d+)", proc.stdout)
    assert losses, proc.stdout
    return float(losses[0]), proc.stdout


@pytest.mark.slow
def test_finetune_under_torchrun_matches_single_process(tmp_path, data_dir):
    repo = make_repo(tmp_path)
    run([sys.executable, "stages/prepare.py"], repo, env=dvc_env())
    single, _ = finetune(repo, "python", 1, 16)
    single_model = (repo / "models" / "finetune-book" / "model.safetensors").read_bytes()
    # Two processes with 8 pairs each: the same 16 pairs per optimiser step, MNRL negatives gathered across ranks.
    ddp, out = finetune(repo, "torchrun", 2, 8)
    assert "torch.distributed.run --nproc_per_node=2" in out
    models = sorted(p.name for p in (repo / "models").iterdir() if p.name != ".gitignore")
    assert models == ["finetune-book"]  # written once, by rank 0, no temporary leftovers
    assert (repo / "models" / "finetune-book" / "model.safetensors").read_bytes() != single_model
    assert ddp == pytest.approx(single, abs=0.25 * single + 0.05)
