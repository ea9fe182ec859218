"""Stage D6 on a generated project: runs written with Lightning's own CSVLogger (the format the template's
training writes), the report folder, and the pull-request comment against the GitHub stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger

from validators import job_ledger
from validators.__main__ import main
from validators.job_ledger import JobRecord, Status
from validators.project import Project
from validators.tracking.comment import publish
from validators.tracking.github import GitHub, GitHubError
from validators.tracking.metrics import from_rows
from validators.tracking.results import ResultsError, collect, resolve, wandb_rows, write
from validators.tracking.sync_ledger import SYNCED, SyncLedger, default_path

from ..helpers import render
from ..helpers.github_server import ALL, COMMENT, CONTENTS, PRIMARY, READ, SECONDARY, Fault, GitHubServer
from ..helpers.wandb_server import WandbServer

TOKEN = "ghp_" + "T0k3n" * 7 + "x"
RUN = "20260101T000000Z-local-first"
URL = "https://wandb.ai/team/demo/runs/abc123"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = render(tmp_path_factory.mktemp("results") / "demo_project", setup=False)
    defaults = subprocess.run([sys.executable, "scripts/train.py", "--print-config"], cwd=root, capture_output=True,
                              text=True, check=True).stdout
    (root / "defaults.yaml").write_text(defaults)
    write_run(root, RUN)
    (root / "runs" / "latest").symlink_to(RUN)
    with SyncLedger.open(default_path(root / "runs")) as ledger:
        row = ledger.add(f"{RUN}/wandb/offline-run-20260101_000000-abc123/run-abc123.wandb", "abc123", 10, "0" * 64, True)
        ledger.update(row, state=SYNCED, url=URL)
    return root


def write_run(root: Path, name: str, epochs: int = 3, per_epoch: int = 4, restart: bool = False) -> Path:
    """A run folder as the template's train.py leaves it: config.yaml and csv/metrics.csv (Lightning's CSVLogger).
    `restart`: the job was requeued in epoch 2 after two steps and resumed from the end of epoch 1 (csv/restart-1/)."""
    run = root / "runs" / name
    config = yaml.safe_load((root / "defaults.yaml").read_text())
    config["optim"]["lr"], config["trainer"]["max_epochs"], config["run"]["name"] = 0.01, epochs, "first"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = CSVLogger(run, name="csv", version="")
    for epoch in range(epochs):
        if restart and epoch == 2:
            for step in (8, 9):  # trained, then lost to the requeue: the restart trains these steps again
                log.log_metrics({"train/loss_step": 9.0, "epoch": epoch}, step=step)
            log.save()
            log = CSVLogger(run, name="csv", version="restart-1")
        steps = range(epoch * per_epoch, (epoch + 1) * per_epoch)
        for step in steps:
            log.log_metrics({"train/loss_step": 2.0 - 0.1 * step, "epoch": epoch}, step=step)
        log.log_metrics({"val/loss": 1.9 - 0.2 * epoch, "val/acc": 0.5 + 0.1 * epoch, "epoch": epoch}, step=steps[-1])
        log.log_metrics({"train/loss": 2.0 - 0.1 * (steps[0] + 1.5), "epoch": epoch}, step=steps[-1])
    log.log_metrics({"test/loss": 1.45, "test/acc": 0.75, "epoch": epochs}, step=epochs * per_epoch)
    log.save()
    return run


def results_cli(root: Path, *args: str) -> tuple[int, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--project", str(root), "results", *args])
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def report(project) -> tuple[dict, Path]:
    results, series = collect(Project(project), resolve(project, RUN), env={})
    return results, write(Project(project), results, series)


def test_the_report_holds_every_metric_the_sla_rows_and_the_config_diff(project, report):
    results, folder = report
    assert sorted(p.name for p in folder.iterdir()) == [
        "acc_by_epoch.png", "acc_by_step.png", "figures.json", "loss_by_epoch.png", "loss_by_step.png", "results.json",
        "summary.md"]
    assert json.loads((folder / "results.json").read_text()) == results
    assert results["run"] == RUN and results["run_dir"] == f"runs/{RUN}" and results["source"] == "csv"
    assert results["source_note"] == "synced, but WANDB_API_KEY is not set; csv/metrics.csv"
    assert results["run_url"] == URL and results["job"] is None and results["commit"] is None
    assert results["metrics"]["val/loss"] == {"final": 1.5, "best": 1.5, "step": 11, "best_step": 11, "goal": "min"}
    assert results["metrics"]["val/acc"] == {"final": 0.7, "best": 0.7, "step": 11, "best_step": 11, "goal": "max"}
    assert results["metrics"]["train/loss_step"] == {"final": pytest.approx(0.9), "best": pytest.approx(0.9), "step": 11,
                                                      "best_step": 11, "goal": "min"}
    assert results["metrics"]["test/acc"] == {"final": 0.75, "best": 0.75, "step": 12, "best_step": 12, "goal": "max"}
    assert results["sla"][0] == {"item": "accuracy_pct", "metric": "test/acc", "target": 95.0, "bound": "at least",
                                 "measured": 75.0, "best": 75.0, "verdict": "not met", "note": ""}
    assert [(r["item"], r["verdict"]) for r in results["sla"]] == [
        ("accuracy_pct", "not met"), ("f1_pct", "not stated"), ("latency_ms", "not measured"),
        ("throughput_per_s", "not stated")]
    assert results["config_diff"] == {"optim.lr": {"default": 0.001, "run": 0.01},
                                      "run.name": {"default": None, "run": "first"},
                                      "trainer.max_epochs": {"default": 10, "run": 3}}
    summary = (folder / "summary.md").read_text()
    assert "| `val/loss` | 1.5 | 11 | 1.5 | 11 | min |" in summary
    assert "| accuracy_pct | `test/acc` | >= 95 | 75 | 75 | **not met** |  |" in summary
    assert "| `optim.lr` | 0.001 | 0.01 |" in summary and f"- W&B run: {URL}" in summary
    assert "![loss by step](loss_by_step.png)" in summary


def test_each_png_is_a_plot_of_exactly_the_logged_points(report):
    import matplotlib.image

    results, folder = report
    drawn = {f["file"]: f["lines"] for f in json.loads((folder / "figures.json").read_text())}
    by_step = drawn["loss_by_step.png"]
    assert list(by_step) == ["train/loss", "train/loss_step", "val/loss"]
    assert by_step["train/loss_step"]["x"] == list(range(12))               # every logged step, one point each
    assert by_step["train/loss_step"]["y"] == pytest.approx([2.0 - 0.1 * s for s in range(12)])
    assert by_step["val/loss"] == {"x": [3, 7, 11], "y": pytest.approx([1.9, 1.7, 1.5])}
    by_epoch = drawn["loss_by_epoch.png"]
    assert by_epoch["train/loss_step"] == {"x": [0, 1, 2], "y": pytest.approx([1.85, 1.45, 1.05])}  # the epoch's mean
    assert drawn["acc_by_step.png"] == {"val/acc": {"x": [3, 7, 11], "y": pytest.approx([0.5, 0.6, 0.7])}}
    for name in results["figures"]:
        pixels = matplotlib.image.imread(folder / name)
        assert pixels.shape == (400, 640, 4) and pixels.std() > 0.05  # a drawn 6.4x4 in figure at 100 dpi, not blank


def test_a_requeued_run_merges_its_restart_log_and_the_restart_wins_from_its_first_step(project):
    write_run(project, "20260101T000001Z-slurm", restart=True)
    results, series = collect(Project(project), resolve(project, "20260101T000001Z-slurm"), env={})
    assert results["source_note"] == "csv/metrics.csv, csv/restart-1/metrics.csv"
    steps = series["train/loss_step"].points
    assert [p.step for p in steps] == list(range(12))
    assert [p.value for p in steps][8:10] == pytest.approx([1.2, 1.1])  # not the 9.0 logged before the requeue
    assert [p.step for p in series["val/loss"].points] == [3, 7, 11]


def test_targets_resolve_from_a_run_name_a_path_latest_or_a_job_id(project):
    record = JobRecord(backend="local", job_id="4242", name="n", command="c", commit="c0ffee", dirty=False,
                       config_hash="f" * 64, run_dir=f"runs/{RUN}", log_path=f"runs/{RUN}/job.log",
                       url="https://platform.example/jobs/4242")
    record.observe(Status("COMPLETED", "exit 0"))
    job_ledger.save(project, record)
    try:
        for ident in (RUN, f"runs/{RUN}", str(project / "runs" / RUN), None, "local-4242", "4242"):
            target = resolve(project, ident)
            assert (target.name, target.job.key) == (RUN, "local-4242"), ident
        results, _ = collect(Project(project), resolve(project, "4242"), env={})
        assert results["job"] == {"backend": "local", "id": "4242", "url": "https://platform.example/jobs/4242",
                                  "state": "COMPLETED"}
        assert (results["commit"], results["config_hash"]) == ("c0ffee", "f" * 64)
    finally:
        job_ledger.path_of(project, "local", "4242").unlink()
    with pytest.raises(ResultsError, match=r"^'nope' is neither a run folder \(runs/<name>\) nor a known job: no job 'nope'"):
        resolve(project, "nope")


def test_a_synced_run_takes_its_metrics_from_wandb_when_the_key_is_set(project):
    asked = []

    def fetch(url: str, key: str, base: str | None) -> list[dict]:
        asked.append((url, key, base))
        return [{"_step": i, "trainer/global_step": 5 * i, "epoch": i, "val/loss": 1.0 - 0.1 * i, "_runtime": 3.0}
                for i in range(4)]

    target = resolve(project, RUN)
    results, series = collect(Project(project), target, env={"WANDB_API_KEY": "k" * 40}, fetch=fetch)
    assert asked == [(URL, "k" * 40, None)]
    assert (results["source"], results["source_note"]) == ("wandb", f"run {URL}")
    assert list(series) == ["val/loss"] and [p.step for p in series["val/loss"].points] == [0, 5, 10, 15]

    def broken(url: str, key: str, base: str | None) -> list[dict]:
        raise ConnectionError(f"refused with key {key}")

    results, _ = collect(Project(project), target, env={"WANDB_API_KEY": "k" * 40}, fetch=broken)
    assert results["source"] == "csv"
    assert results["source_note"] == (f"W&B API failed for {URL} (ConnectionError: refused with key ***); csv/metrics.csv")


def test_a_run_without_metrics_is_an_error_and_nothing_is_written_to_github(project, monkeypatch):
    (project / "runs" / "empty-run" / "csv").mkdir(parents=True)
    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={12}) as gh:
        set_github(monkeypatch, gh.url)
        code, out = results_cli(project, "empty-run", "--pr", "12")
        assert gh.paths() == ["GET /pulls/12"]
    assert code == 1
    assert out.startswith("error: runs/empty-run: the run logged no metrics (no csv/metrics.csv): nothing to report")
    assert not (project / "reports" / "results" / "empty-run").exists()


def set_github(monkeypatch, url: str, token: str = TOKEN) -> None:
    monkeypatch.setenv("GITHUB_API_URL", url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "owner/repo")
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_the_first_pr_call_creates_the_comment_and_the_second_updates_it(project, monkeypatch):
    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={12}) as gh:
        set_github(monkeypatch, gh.url)
        code, first = results_cli(project, RUN, "--pr", "12")
        assert code == 0, first
        created = gh.paths()
        code, second = results_cli(project, RUN, "--pr", "12")
        assert code == 0, second
        updated = gh.paths()[len(created):]
    figures = ["acc_by_step.png", "acc_by_epoch.png", "loss_by_step.png", "loss_by_epoch.png"]
    stored = [f"reports/results/{RUN}/{f}" for f in figures]
    assert created == ["GET /pulls/12", "GET /git/ref/heads/hephaestus-results", "GET ", "GET /git/ref/heads/main",
                       "POST /git/refs", *[x for p in stored for x in (f"GET /contents/{p}", f"PUT /contents/{p}")],
                       "GET /issues/12/comments", "POST /issues/12/comments"]
    (comment,) = gh.comments[12]
    assert updated == ["GET /pulls/12", "GET /git/ref/heads/hephaestus-results", *[f"GET /contents/{p}" for p in stored],
                       "GET /issues/12/comments", f"PATCH /issues/comments/{comment['id']}"]  # same PNGs: not stored again
    assert "created the comment on pull request #12: https://github.com/owner/repo/pull/12#issuecomment-" in first
    assert "updated the comment on pull request #12" in second
    body = comment["body"]
    assert body.startswith(f"<!-- hephaestus-results:{RUN} -->\n## Results: {RUN}\n")
    assert f"- W&B run: {URL}" in body and "| `val/loss` | 1.5 | 11 | 1.5 | 11 | min |" in body
    assert (f"![loss by step](https://github.com/owner/repo/blob/hephaestus-results/reports/results/{RUN}/"
            "loss_by_step.png?raw=true)") in body
    folder = project / "reports" / "results" / RUN
    assert gh.branches["hephaestus-results"].files[stored[2]] == (folder / "loss_by_step.png").read_bytes()
    assert gh.branches["hephaestus-results"].files["README.md"] == b"# repo\n"  # made from the default branch
    assert all(TOKEN.encode() not in r.raw for r in gh.requests)
    assert {r.headers["Authorization"] for r in gh.requests} == {f"Bearer {TOKEN}"}
    assert TOKEN not in first + second
    assert not [p for p in project.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


def test_the_comment_is_found_on_a_later_page_and_images_can_stay_out_of_the_repository(project, report):
    results, folder = report
    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={7}) as gh:
        client = GitHub("owner/repo", TOKEN, gh.url)
        for i in range(150):
            client.create_comment(7, f"review {i}" if i != 120 else f"<!-- hephaestus-results:{RUN} -->\nold")
        before = len(gh.requests)
        action, url = publish(client, 7, results, folder, images=False)
        asked = gh.paths()[before:]
    assert action == "updated" and url.endswith("#issuecomment-1000121")
    assert asked == ["GET /issues/7/comments", "GET /issues/7/comments", "PATCH /issues/comments/1000121"]
    assert [r.query for r in gh.requests[before:before + 2]] == [{"per_page": "100"}, {"per_page": "100", "page": "2"}]
    body = gh.comments[7][120]["body"]
    assert f"Not uploaded: the PNGs are in `reports/results/{RUN}/` where `nox -s results` ran" in body
    assert "![" not in body and "hephaestus-results" not in gh.branches


@pytest.mark.parametrize(("pr", "tokens", "token", "message"), [
    (99, {TOKEN: ALL}, TOKEN, "error: no pull request #99 in owner/repo (404): check the number, or that the token can "
                              "see the repository"),
    (12, {TOKEN: ALL}, "ghp_wrong", "error: GitHub refused the token while reading pull request #12 (401 Bad credentials): "
                                    "GITHUB_TOKEN is wrong, expired or revoked"),
    (12, {TOKEN: frozenset({READ, CONTENTS})}, TOKEN,
     "error: forbidden while commenting on #12 (403 Resource not accessible by personal access token): the token needs "
     "`pull-requests: write` (or `issues: write`) on owner/repo"),
    (12, {TOKEN: frozenset({READ, COMMENT})}, TOKEN,
     "error: forbidden while creating branch hephaestus-results (403 Resource not accessible by personal access token): "
     "the token needs `contents: write` (or --no-images: no PNG stored) on owner/repo"),
])
def test_bad_input_is_one_error_line_and_no_comment(project, monkeypatch, pr, tokens, token, message):
    with GitHubServer("owner/repo", tokens=tokens, pulls={12}) as gh:
        set_github(monkeypatch, gh.url, token)
        code, out = results_cli(project, RUN, "--pr", str(pr))
    assert code == 1 and out.splitlines()[-1] == message and "Traceback" not in out
    assert gh.comments == {12: []} and TOKEN not in out


def test_a_missing_token_stops_before_any_work(project, monkeypatch):
    with GitHubServer("owner/repo", tokens={TOKEN: ALL}) as gh:
        set_github(monkeypatch, gh.url, "")
        code, out = results_cli(project, "nope", "--pr", "1")
        assert gh.requests == []
    assert code == 1 and out.startswith("error: GITHUB_TOKEN is not set: the comment needs a token with")


def test_rate_limits_are_waited_out_as_github_says_and_then_given_up(project, report):
    results, folder = report
    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={12}) as gh:
        gh.inject("POST", "/issues/12/comments", Fault(429, "Too Many Requests", {"Retry-After": "1"}),
                  Fault(403, SECONDARY, {"Retry-After": "1"}))
        started = time.monotonic()
        action, _ = publish(GitHub("owner/repo", TOKEN, gh.url), 12, results, folder, images=False)
        assert action == "created" and time.monotonic() - started >= 2.0 and len(gh.comments[12]) == 1
        waits: list[float] = []
        reset = int(time.time()) + 30
        gh.inject("GET", "/pulls/12", *[Fault(403, PRIMARY, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})] * 4)
        client = GitHub("owner/repo", TOKEN, gh.url, sleep=waits.append, clock=lambda: reset - 29.5)
        with pytest.raises(GitHubError, match=r"^GitHub kept rate limited while reading pull request #12 \(4 attempt\(s\); "
                                              rf"next try in \d+ s\): {PRIMARY}; try again later$"):
            client.pull(12)
        assert waits == [30.5, 30.5, 30.5]
        gh.inject("GET", "/pulls/12", Fault(429, "Too Many Requests", {"Retry-After": "3600"}))
        with pytest.raises(GitHubError, match=r"\(1 attempt\(s\); next try in 3600 s\)"):
            client.pull(12)
    assert SECONDARY not in gh.comments[12][0]["body"]


def test_github_errors_never_carry_the_token(project):
    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={12}) as gh:
        gh.inject("POST", "/issues/12/comments", Fault(422, f"Validation Failed: token {TOKEN} in body"))
        with pytest.raises(GitHubError) as caught:
            GitHub("owner/repo", TOKEN, gh.url).create_comment(12, "x")
    assert str(caught.value) == "GitHub rejected the request while commenting on #12 (422 Validation Failed: token *** in body)"


def test_wandb_history_comes_through_the_real_public_api_client(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # wandb writes its settings under ~/.config
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    rows = [{"_step": i, "_runtime": 1.5 * i, "trainer/global_step": 4 * i + 3, "epoch": i, "val/loss": 1.0 - 0.1 * i}
            for i in range(1200)]
    with WandbServer(api_key="k" * 40, entity="team") as wb:
        wb.seed("team", "demo", "abc123", rows)
        got = wandb_rows(f"{wb.url}/team/demo/runs/abc123", "k" * 40)
        asked = [r for r in wb.requests if r.path == "/graphql"]
    assert got == rows  # all 1200: `samples` is the run's row count, so W&B drops none
    assert [r.operation for r in asked] == ["Viewer", "GetDefaultEntity", "Run", "RunHistoryKeys", "RunFullHistory"]
    assert all(r.authorized for r in asked)
    assert [p.step for p in from_rows(got)["val/loss"].points][:3] == [3, 7, 11]
