"""Every file a stage writes in a generated project: its path, stage, owner and schema, in one place.

Stage modules take their paths from here; `copier update`'s project-owned list (`PROJECT_OWNED`),
the README's runtime paths (`RUNTIME_PATHS`) and the tree walks' skip lists are derived from it, and
a test fails when a validators module spells one of these paths itself.

Owner: `template` files are rendered by copier and refreshed by `copier update`; `project` files are
written by the planner, a stage or the researcher, and an update never rewrites them. `runtime`
outputs are neither: they are made by running things and kept out of git.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATE, PROJECT, RUNTIME = "template", "project", "runtime"


@dataclass(frozen=True)
class Artifact:
    path: str                 # relative to the project root, POSIX; a folder ends without '/'
    stage: str                # A1..C4 for stage outputs, "run" for training outputs
    owner: str                # TEMPLATE, PROJECT or RUNTIME
    schema: str | None = None  # validators/schemas/<schema>.schema.json of its front matter
    what: str = ""
    by: str = ""               # the session that writes it, for "missing" hints (Project.front adds its chain)

    def __str__(self) -> str:
        return self.path


# A1-A5: the planner's documents (copier's tasks), the reports of copy time, the venv spec.
ANSWERS = Artifact(".copier-answers.yml", "A", TEMPLATE, what="copier's answers")
README = Artifact("README.md", "A3", TEMPLATE, what="the project's README (stages C3-C4 rewrite their marked sections)")
REQUIREMENTS = Artifact("docs/plan/requirements.md", "A1", PROJECT, "requirements", "the analysed requirement")
TECH = Artifact("docs/plan/tech.md", "A2", PROJECT, "tech", "candidate models and measured resources")
TASK = Artifact("docs/plan/task.md", "A3", PROJECT, "task", "the task breakdown")
BUILD_LOG = Artifact("reports/PROJECT_BUILD_LOG.md", "A3", PROJECT, "build_log", "each task's checked evidence",
                     by="nox -s setup, again: nox -s review")
REVIEW = Artifact("reports/REVIEW_REPORT.md", "A4", PROJECT, "review_report", "code and config review",
                  by="nox -s setup, again: nox -s review")
VENV_SPEC = Artifact("docs/venv.md", "A5", TEMPLATE, "venv", "how to build the debug environments")
CLAUDE = Artifact("CLAUDE.md", "A5", TEMPLATE, what="the rules for assistants")
SPECS = Artifact("docs/specs", "A5", TEMPLATE, what="the spec copies")
REQUIREMENTS_CPU = Artifact("requirements-cpu.txt", "A5", TEMPLATE, what="debug-cpu pins")
REQUIREMENTS_GPU = Artifact("requirements-gpu.txt", "A5", TEMPLATE, what="debug-gpu pins")
# B1-B4
RULES_CUSTOMISED = Artifact("CLAUDE.local.md", "B1", PROJECT, "rules_decision", "rules as customised")
RULES_INHERITED = Artifact("CLAUDE.inherited.md", "B1", PROJECT, "rules_decision", "rules accepted as they are")
ENV_CHECK = Artifact("reports/env_check_report.md", "B2", PROJECT, "env_check", "the venv against its pins",
                     by="nox -s env_check")
MINI_DATASET = Artifact("reports/mini_dataset.md", "B2", PROJECT, "mini_dataset", "what data/mini holds",
                        by="nox -s env_check")
MINI_DATA = Artifact("data/mini", "B2", PROJECT, what="the mini dataset (written once, on copy)")
FIGURES = Artifact("reports/figures", "B2", PROJECT, what="the reports' figures (the notebook's, deploy's)")
NOTEBOOK_RUN = Artifact("reports/explore_mini.executed.ipynb", "B2", PROJECT, what="the notebook, executed headless")
NOTEBOOK_FIGURES = Artifact("reports/figures/mini_samples.png", "B2", PROJECT, what="the notebook's sample grid")
NOTEBOOK_DISTRIBUTION = Artifact("reports/figures/mini_distribution.png", "B2", PROJECT, what="the notebook's class or value distribution")
BUGFIX_REPORT = Artifact("reports/bugfix_report.md", "B3", PROJECT, "bugfix_report", "the fix loop's record",
                         by="nox -s bugfix")
GUIDANCE = Artifact("reports/full_train_guidance.md", "B4", PROJECT, "full_train_guidance", "full-training guidance",
                    by="nox -s guidance")
LAUNCH_SLURM = Artifact("scripts/launch_slurm.sh", "B4", PROJECT, what="SLURM launch script (yours to edit)")
LAUNCH_TORCHRUN = Artifact("scripts/launch_torchrun.sh", "B4", PROJECT, what="torchrun launch script (yours to edit)")
EXPERIMENTS = Artifact("configs/experiment", "A3", TEMPLATE, what="experiment configs, `experiment=<name>` (the README is the template's)")
FULL_TRAINING = Artifact("configs/experiment/full_ddp.yaml", "B4", PROJECT, what="the multi-node setup the launch scripts run")
# C1-C4
DOCKER_ENV = Artifact("reports/docker_env_report.md", "C1", PROJECT, what="engine, Compose, GPU passthrough")
CONTAINER_CHECK = Artifact("reports/container_env_check.log", "C2", PROJECT, what="checks inside the image (YAML)")
DEPLOY_REPORT = Artifact("reports/deploy_report.md", "C3", PROJECT, what="endpoints, smoke tests, SLA figures")
DEPLOY_FIGURE = Artifact("reports/figures/deploy_latency.png", "C3", PROJECT, what="latency histogram")
DOCKER_ERROR = Artifact("reports/docker_error_report_{n}.md", "C3", PROJECT, what="a fatal deploy failure (N counts up)")
RUNNING_REPORT = Artifact("reports/docker_running_report.md", "C4", PROJECT, "docker_running_report", "drift and monitoring",
                          by="nox -s monitor")
MONITORING = Artifact("deploy/monitoring", "C4", PROJECT, what="Prometheus, alert rules, Grafana dashboard")
ROLLBACK = Artifact("scripts/rollback.sh", "C4", TEMPLATE, what="re-tag the previous image and recreate")
WHEELHOUSE = Artifact("wheelhouse", "C2", RUNTIME, what="wheels for the offline image build")
VENVS = Artifact(".venvs", "A5", RUNTIME, what="the project venvs nox -s setup builds: .venvs/debug-cpu, .venvs/debug-gpu")
CHAIN_STATE = Artifact(".hephaestus/chains.json", "chain", RUNTIME,
                       what="nox -s project / docker: each finished step's input fingerprint (validators/chain.py)")
# D2, D4: the relocatable venv a compute node runs, the cluster configs and one ledger file per job.
CLUSTER_VENV = Artifact(".venv", "D2", RUNTIME, what="the relocatable venv the cluster jobs run (nox -s cluster_venv)",
                        by="nox -s cluster_venv")
CLUSTER_CONFIGS = Artifact("configs/cluster", "D4", TEMPLATE, what="one typed config per job backend: local, slurm, qizhi")
JOBS = Artifact("jobs", "D4", PROJECT, what="one ledger per cluster job: jobs/<backend>-<id>.yaml", by="nox -s submit")
# D3: the review before compute on every pull request, and the experiment workflow (each step a nox session).
WORKFLOWS = Artifact(".github/workflows", "D3", TEMPLATE, what="review.yml (every pull request) and experiment.yml (submit, results)")
# D5: the sync agent's ledger when it watches runs/ (it lives beside the watched folder: <DIR>.sync.sqlite), its unit.
SYNC_LEDGER = Artifact("runs.sync.sqlite", "D5", RUNTIME, what="the sync agent's ledger of runs/ (SQLite; -wal, .lock beside it)",
                       by="nox -s sync_agent")
SYNC_UNIT = Artifact("deploy/sync-agent/hephaestus-sync.service", "D5", TEMPLATE,
                     what="the sync agent as a systemd user service on the login node")
# D6: one folder of results per run (summary.md, results.json, the curves), what `nox -s results` posts on a pull request.
RESULTS = Artifact("reports/results", "D6", PROJECT, what="per run: summary.md, results.json and the curves (PNG)",
                   by="nox -s results")
RESULTS_FIGURE = Artifact("reports/results/{run}/{metric}_by_{axis}.png", "D6", PROJECT,
                          what="one curve: a metric family (loss, acc, ...) by step or by epoch", by="nox -s results")
# D7: one permanent note per experiment, and their map of contents (rewritten by every `nox -s note`).
NOTES = Artifact("notes", "D7", PROJECT, "note", "one note per experiment: notes/<YYYYMMDD>-<slug>.md", by="nox -s note")
NOTES_INDEX = Artifact("notes/index.md", "D7", PROJECT, what="the notes' map of contents, by question", by="nox -s note")
# Pretrained weights and the full dataset, fetched once where there is internet (the hub wing), checked where there
# is none (the cluster wing refuses a job whose weights fail their hashes): validators/weights.py reads the manifests.
HUB_CONFIG = Artifact("configs/hub.yaml", "fetch", TEMPLATE, what="the hub repository and revision of each pretrained model "
                      "and of the full dataset")
WEIGHTS = Artifact("weights", "fetch", RUNTIME, what="one folder per pretrained model: weights/<model>/ (config.json, "
                   "*.safetensors, tokenizer or preprocessor files)", by="nox -s fetch_weights")
WEIGHTS_MANIFEST = Artifact("weights/manifest.yaml", "fetch", RUNTIME, what="per model: repo, revision, commit, endpoint, "
                            "time and the sha256 of every file", by="nox -s fetch_weights")
FULL_DATA = Artifact("data/full", "fetch", RUNTIME, what="the full dataset: yours, or the catalog's from the hub",
                     by="nox -s fetch_data")
FULL_DATA_MANIFEST = Artifact("data/full/manifest.yaml", "fetch", RUNTIME, what="what nox -s fetch_data fetched and "
                              "every file it wrote, with sha256", by="nox -s fetch_data")
# Training runs: one folder each, never overwritten; runs/latest links the newest.
RUNS = Artifact("runs", "run", RUNTIME, what="one folder per training run: runs/<UTC timestamp>-<name>/")
LATEST = Artifact("runs/latest", "run", RUNTIME, what="link to the newest run folder")
RUN_SUMMARY = Artifact("runs/latest/summary.json", "run", RUNTIME, what="the newest run's summary")
CHECKPOINT = Artifact("runs/latest/checkpoints/last.ckpt", "run", RUNTIME, what="the newest run's last checkpoint")
REPORTS = Artifact("reports", "A-C", PROJECT, what="every stage report; figures in reports/figures/")

ARTIFACTS: tuple[Artifact, ...] = tuple(v for v in globals().values() if isinstance(v, Artifact))

# What `copier update` and `copier recopy` never rewrite (update.py checks the merge left them alone);
# reports/ is listed whole, so its single files are not repeated.
PROJECT_OWNED: tuple[str, ...] = tuple(a.path for a in ARTIFACTS if a.owner == PROJECT and "{" not in a.path
                                       and not a.path.startswith(REPORTS.path + "/"))
# Paths that exist only after something ran: the README may name them before they do. Plus run-time
# folders no stage registers (venvs, W&B's and Lightning's own folders).
RUNTIME_PATHS: tuple[str, ...] = (*(a.path for a in ARTIFACTS if a.owner == RUNTIME),
                                  *(a.path.split("{")[0] for a in ARTIFACTS if "{" in a.path),
                                  *(a.path for a in ARTIFACTS if a.stage[0] in "BCD" and a.owner == PROJECT and "{" not in a.path),
                                  ".nox", "wandb", "outputs", "lightning_logs", "logs")
# Folders a walk of the project's own files never enters: anywhere, then at the root only.
SKIP_ANYWHERE = frozenset({".git", VENVS.path, CLUSTER_VENV.path, ".nox", ".hephaestus", "__pycache__", ".pytest_cache", ".ruff_cache",
                           ".ipynb_checkpoints", "node_modules"})
SKIP_AT_ROOT = frozenset({"data", RUNS.path, WHEELHOUSE.path, WEIGHTS.path, "logs", "checkpoints", "wandb", "lightning_logs", "outputs"})


def by_path(path: str) -> Artifact | None:
    """The artifact registered at `path`, or None."""
    return next((a for a in ARTIFACTS if a.path == path), None)
