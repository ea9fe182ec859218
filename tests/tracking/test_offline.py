"""Gate D1: a tiny project folder with W&B offline and no key passes; each planted fault is reported
exactly, and no error ever holds the key it found."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from validators.project import Project
from validators.tracking import GATES
from validators.tracking.offline import Redacted, rule_wandb_offline

from ..helpers import write_file

KEY = "0123456789abcdef0123456789abcdef01234567"     # the classic shape: 40 hex digits
LOCAL_KEY = "local-" + "fedcba9876543210" * 2 + "89abcdef"  # an on-prem key: a prefix, then 40 hex digits
COMMIT = "a" * 40                                     # a ledger's commit has the key's shape and is no key
NO_KEY = ("no W&B API key in a file the project keeps: the machine that uploads (`wandb sync`, the sync agent) reads "
          "WANDB_API_KEY from its own environment (hint: delete it here, and revoke the key (https://wandb.ai/authorize): "
          "it has been in a file)")
OFFLINE = "true: compute nodes have no internet, and `wandb sync` uploads the offline runs later"


def ledger(**fields) -> str:
    record = {"backend": "local", "job_id": "1", "name": "p-r", "commit": COMMIT, "dirty": False, "config_hash": "b" * 64,
              "run_dir": "runs/r", "log_path": "runs/r/job.log",
              "command": "cd /p && source .venv/bin/activate && export WANDB_MODE=offline && python scripts/train.py",
              "train_args": ["--epochs", "1"], "history": []}
    return yaml.safe_dump({**record, **fields}, sort_keys=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """What a generated project holds that D1 reads, as shipped: W&B offline, no key anywhere."""
    write_file(tmp_path / "configs/logger/wandb.yaml", "name: wandb  # csv or wandb\noffline: true  # keep true\n")
    write_file(tmp_path / "configs/logger/csv.yaml", "name: csv  # csv or wandb\noffline: true  # W&B only\n")
    write_file(tmp_path / "configs/train.yaml", "defaults:\n  logger: wandb  # configs/logger/\nseed: 42  # seeds\n")
    write_file(tmp_path / "configs/experiment/README.md", "# configs/experiment/\n")
    write_file(tmp_path / "configs/cluster/slurm.yaml", "partition: ''  # default\noverrides: [trainer=ddp_cpu]  # added\n")
    write_file(tmp_path / "jobs/local-1.yaml", ledger())
    write_file(tmp_path / "runs/r/job.sbatch", "#!/bin/bash\nexport WANDB_MODE=offline\nsrun python scripts/train.py\n")
    (tmp_path / "runs/latest").symlink_to("r")  # the same folder again: read once
    write_file(tmp_path / "scripts/launch_slurm.sh", 'export WANDB_MODE=offline\nexport WANDB_API_KEY="${WANDB_API_KEY}"\n')
    write_file(tmp_path / ".env", "WANDB_API_KEY=$WANDB_API_KEY\nWANDB_PROJECT=demo\n")
    return tmp_path


def errors(root: Path) -> list[str]:
    found = [str(e) for e in rule_wandb_offline(Project(root))]
    for key in (KEY, LOCAL_KEY, KEY[4:], LOCAL_KEY[4:]):
        assert not any(key in e for e in found)
    return found


def test_d1_is_the_tracking_wings_gate_and_a_project_as_shipped_passes(project):
    assert GATES["D1"] == [rule_wandb_offline]
    assert errors(project) == []


def test_w_and_b_turned_online_in_a_logger_config_train_yaml_or_an_experiment(project):
    write_file(project / "configs/logger/wandb.yaml", "name: wandb  # csv or wandb\noffline: false  # keep true\n")
    write_file(project / "configs/train.yaml", "defaults:\n  logger: wandb  # g\nlogger:\n  offline: no  # planted\n")
    write_file(project / "configs/experiment/full.yaml", "logger:\n  offline: 'false'  # planted\n")
    assert errors(project) == [
        f"configs/logger/wandb.yaml: offline: False is invalid: expected {OFFLINE} (hint: set `offline: true`)",
        f"configs/train.yaml: logger.offline: False is invalid: expected {OFFLINE} "
        "(hint: delete the key (configs/logger/ keeps W&B offline) or set it to true)",
        f"configs/experiment/full.yaml: logger.offline: 'false' is invalid: expected {OFFLINE} "
        "(hint: delete the key (configs/logger/ keeps W&B offline) or set it to true)"]


def test_an_override_or_a_launch_script_that_turns_w_and_b_online_but_not_what_already_ran(project):
    write_file(project / "configs/cluster/slurm.yaml", "overrides: [trainer=ddp_cpu, logger.offline=false]  # added\n")
    write_file(project / "scripts/launch_slurm.sh", "#!/bin/bash\nexport WANDB_MODE='online'\nexport WANDB_MODE=$MODE\n")
    # history: a ledger and a batch script are searched for keys only (the job exported WANDB_MODE=offline)
    write_file(project / "jobs/local-2.yaml", ledger(job_id="2", train_args=["logger.offline=False"],
                                                      command="export WANDB_MODE=online && python scripts/train.py"))
    write_file(project / "runs/r/job.sbatch", "#!/bin/bash\nexport WANDB_MODE=online\n")
    assert errors(project) == [
        "configs/cluster/slurm.yaml: overrides[1]: 'logger.offline=false' is invalid: expected no override that turns "
        "W&B online: compute nodes have no internet (hint: remove it; W&B stays offline and `wandb sync` uploads the "
        "runs later)",
        "scripts/launch_slurm.sh: line 2: 'WANDB_MODE=online' is invalid: expected WANDB_MODE=offline (or dryrun, disabled): "
        "compute nodes have no internet (hint: export WANDB_MODE=offline; `wandb sync` uploads the runs later)"]


def test_a_key_in_a_config_named_or_by_its_shape(project):
    write_file(project / "configs/logger/wandb.yaml",
               "name: wandb  # csv or wandb\noffline: true  # keep true\n"
               f"wandb:\n  settings:\n    api_key: {LOCAL_KEY}  # planted\n")
    write_file(project / "configs/cluster/slurm.yaml", f"partition: ''  # default\nenv: {{WANDB_API_KEY: \"sk-{KEY}\"}}\n")
    write_file(project / "configs/experiment/notes.txt", f"my key, for later: {KEY}\n")
    assert errors(project) == [
        f"configs/cluster/slurm.yaml: line 2: sk-0... (43 characters, redacted) is invalid: expected {NO_KEY}",
        f"configs/experiment/notes.txt: line 1: 0123... (40 characters, redacted) is invalid: expected {NO_KEY}",
        f"configs/logger/wandb.yaml: wandb.settings.api_key: loca... (46 characters, redacted) is invalid: expected {NO_KEY}"]


def test_a_key_in_a_job_command_its_arguments_its_batch_script_a_launch_script_or_an_env_file(project):
    write_file(project / "jobs/local-2.yaml", ledger(job_id="2", command=f"export WANDB_API_KEY={KEY} && python x.py",
                                                      train_args=["--epochs", "1", f"run.name={LOCAL_KEY}"]))
    write_file(project / "runs/r/job.sbatch", f"#!/bin/bash\nwandb login {KEY}\n")
    write_file(project / "scripts/launch_torchrun.sh", f"export WANDB_API_KEY='{LOCAL_KEY}'\n")
    write_file(project / "deploy/sync/.env.local", f"WANDB_API_KEY = {KEY}\n")
    write_file(project / "deploy/sync/readme.txt", f"not an env file: {KEY}\n")  # only .env-like files are read
    assert errors(project) == [
        f"jobs/local-2.yaml: command: 0123... (40 characters, redacted) is invalid: expected {NO_KEY}",
        f"jobs/local-2.yaml: train_args[2]: loca... (46 characters, redacted) is invalid: expected {NO_KEY}",
        f"runs/r/job.sbatch: line 2: 0123... (40 characters, redacted) is invalid: expected {NO_KEY}",
        f"scripts/launch_torchrun.sh: line 1: loca... (46 characters, redacted) is invalid: expected {NO_KEY}",
        f"deploy/sync/.env.local: line 1: 0123... (40 characters, redacted) is invalid: expected {NO_KEY}"]


def test_a_redacted_key_shows_four_characters_and_its_length_and_nothing_else():
    shown = Redacted.of(KEY)
    assert (repr(shown), shown.head, shown.length) == ("0123... (40 characters, redacted)", "0123", 40)
    assert KEY not in repr(vars(shown))
