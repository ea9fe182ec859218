"""The real `wandb sync` (wandb 0.31) against the W&B stand-in: what arrives, what the CLI prints, its exit codes.

Each test syncs a copy of one real offline run (the CLI writes `.synced`/`.syncstate` beside the `.wandb`
file, so every test gets a fresh copy); a sync takes about a second. The slow failure modes (retries,
backoff, hangs, a killed sync, a SIGKILLed writer) are in test_wandb_standin_e2e.py.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.wandb_runs import cut, offline_run, row, wandb_sync
from tests.helpers.wandb_server import Fault, WandbServer
from validators.tracking.records import read, run_file

KEY = "local-" + "5" * 40
CONFIG = {"lr": 0.001, "optim": {"name": "adamw", "betas": [0.9, 0.999]}, "epochs": 3}
FILES = {"config.yaml", "requirements.txt", "wandb-metadata.json", "wandb-summary.json"}
PROGRESS = ("setting up run", "updating run metadata", "uploading ")  # status lines the CLI prints when a step is slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return offline_run(tmp_path_factory.mktemp("runs"), project="standin", config=CONFIG, rows=5)


@pytest.fixture
def run_dir(finished: Path, tmp_path: Path) -> Path:
    """A fresh copy of the finished run (the CLI marks the run folder it syncs)."""
    return Path(shutil.copytree(finished, tmp_path / "wandb" / finished.name))


@pytest.fixture
def wb():
    with WandbServer(api_key=KEY) as server:
        yield server


def lines(stderr: str, run_id: str) -> list[str]:
    """The CLI's lines, less its progress lines (which appear only when a step takes long enough)."""
    return [line for line in stderr.splitlines() if not line.startswith(tuple(f"wandb: [standin/{run_id}] {p}" for p in PROGRESS))]


def rel(path: Path, cwd: Path) -> str:
    return str(path.relative_to(cwd))


def test_a_finished_run_arrives_whole_and_the_cli_prints_its_url(wb, run_dir, tmp_path):
    run_id = read(run_file(run_dir)).run_id
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    url = f"{wb.url}/researcher/standin/runs/{run_id}"  # the entity is the server's answer: the run has none offline
    assert lines(done.stderr, run_id) == [
        "wandb: Syncing 1 run(s):",
        f"wandb:   {rel(run_file(run_dir), tmp_path)}",
        f"wandb: [wandb sync] Loaded credentials for {wb.url} from WANDB_API_KEY.",
        f"wandb: [standin/{run_id}] View run {run_id} at {url}",
        f"wandb: [standin/{run_id}] Finished syncing {rel(run_dir, tmp_path)}",
    ]
    got = wb.run(run_id)
    logged = read(run_file(run_dir), keep_history=True)
    assert got.history == logged.history                                  # every row, every value, in order
    assert [{k: r[k] for k in ("loss", "acc")} for r in got.history] == [row(i) for i in range(5)]
    assert [r["_step"] for r in got.history] == [0, 1, 2, 3, 4]
    assert got.config_values() == CONFIG
    assert (got.summary["loss"], got.summary["acc"], got.summary["_step"]) == (0.2, 0.4, 4)
    assert (got.complete, got.exit_code, got.upserts, set(got.files)) == (True, 0, 2, FILES)
    assert (got.entity, got.project) == ("researcher", "standin")
    assert all(r.authorized for r in wb.requests if r.path.startswith(("/graphql", "/files/")))
    assert wb.unknown == []
    assert sorted(p.name for p in run_dir.glob("run-*")) == [f"run-{run_id}.wandb", f"run-{run_id}.wandb.synced",
                                                            f"run-{run_id}.wandb.syncstate"]


def test_a_wrong_key_is_refused_but_the_cli_still_exits_0(wb, run_dir, tmp_path):
    run_id = read(run_file(run_dir)).run_id
    done = wandb_sync(run_dir, wb.url, "local-" + "6" * 40, home=tmp_path, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    assert lines(done.stderr, run_id) == [
        "wandb: Syncing 1 run(s):",
        f"wandb:   {rel(run_file(run_dir), tmp_path)}",
        f"wandb: [wandb sync] Loaded credentials for {wb.url} from WANDB_API_KEY.",
        "wandb: ERROR user is not logged in",
    ]
    assert [op for op in wb.operations() if "otel" not in op] == ["POST /graphql UpsertBucket -> 401"]
    assert wb.runs() == {}
    assert not run_file(run_dir).with_suffix(".wandb.synced").exists()


@pytest.mark.parametrize(("key", "message"), [
    ("short", "Error: WANDB_API_KEY invalid: API key must have 40+ characters, has 5."),
    (None, "Error: No API key configured. Use `wandb login` to log in."),
])
def test_a_malformed_or_missing_key_exits_1_before_any_request(wb, run_dir, tmp_path, key, message):
    done = wandb_sync(run_dir, wb.url, key, home=tmp_path, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        "wandb: Syncing 1 run(s):",
        f"wandb:   {rel(run_file(run_dir), tmp_path)}",
        f"wandb: ERROR Find detailed error logs at: {tmp_path}/wandb/debug-cli.{pwd.getpwuid(os.getuid()).pw_name}.log",
        message,
    ]
    assert wb.operations() == []


def test_a_missing_run_folder_is_a_usage_error_exit_2(wb, tmp_path):
    done = wandb_sync(tmp_path / "gone", wb.url, KEY, home=tmp_path, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "Usage: wandb sync [OPTIONS] [PATHS]...", "Try 'wandb sync --help' for help.", "",
        f"Error: Invalid value for '[PATHS]...': Path '{tmp_path / 'gone'}' does not exist.",
    ]
    assert wb.operations() == []


def test_a_synced_run_is_skipped_and_include_synced_appends_its_rows_again(wb, run_dir, tmp_path):
    run_id = read(run_file(run_dir)).run_id
    assert wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path).returncode == 0
    again = wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path)
    assert (again.returncode, again.stderr.splitlines()) == (
        0, ["wandb: Skipped 1 synced run(s). Include with --no-skip-synced.", "wandb: No runs to sync."])
    assert wb.run(run_id).upserts == 2
    forced = wandb_sync(run_dir, wb.url, KEY, "--include-synced", home=tmp_path, cwd=tmp_path)
    assert forced.returncode == 0 and f"Finished syncing {rel(run_dir, tmp_path)}" in forced.stderr
    got = wb.run(run_id)  # the CLI writes from the server's historyLineCount on: the same rows a second time
    assert [r["_step"] for r in got.history] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert (got.history[:5], got.upserts, got.config_values()) == (got.history[5:], 4, CONFIG)


def test_rows_already_on_the_server_are_appended_to_not_replaced(wb, run_dir, tmp_path):
    """What a rerun after a sync killed mid-upload meets: the CLI writes from the server's historyLineCount on."""
    run_id = read(run_file(run_dir)).run_id
    partial = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0}', '{"_step": 1}']}}}
    assert post(f"{wb.url}/files/researcher/standin/{run_id}/file_stream", partial)[0] == 200
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path)
    assert done.returncode == 0 and f"Finished syncing {rel(run_dir, tmp_path)}" in done.stderr
    assert [r["_step"] for r in wb.run(run_id).history] == [0, 1, 0, 1, 2, 3, 4]


def test_a_run_cut_mid_record_is_uploaded_as_crashed_with_an_error_line_and_rc_0(wb, run_dir, tmp_path):
    run_id = read(run_file(run_dir)).run_id
    cut(run_file(run_dir), torn=True)
    assert not read(run_file(run_dir)).intact
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path)
    assert done.returncode == 0
    assert sorted(lines(done.stderr, run_id)) == sorted([
        "wandb: Syncing 1 run(s):",
        f"wandb:   {rel(run_file(run_dir), tmp_path)}",
        f"wandb: [wandb sync] Loaded credentials for {wb.url} from WANDB_API_KEY.",
        f"wandb: [standin/{run_id}] View run {run_id} at {wb.url}/researcher/standin/runs/{run_id}",
        f'wandb: ERROR Failed to sync all data from "{rel(run_dir, tmp_path)}": the file ends with an incomplete record.'
        " If the run is still running, retry after it finishes or use `wandb beta sync --live`.",
    ])  # the two last lines come in either order
    got = wb.run(run_id)
    assert ([r["_step"] for r in got.history], got.complete, got.exit_code) == ([0, 1, 2, 3, 4], True, 1)
    assert not run_file(run_dir).with_suffix(".wandb.synced").exists()


def test_a_run_cut_between_records_is_marked_synced_as_if_it_had_exited_1(wb, run_dir, tmp_path):
    run_id = read(run_file(run_dir)).run_id
    cut(run_file(run_dir), torn=False)
    log = read(run_file(run_dir))
    assert (log.intact, log.exited, log.history_rows) == (True, False, 5)
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path)
    assert done.returncode == 0
    assert lines(done.stderr, run_id)[-1] == f"wandb: [standin/{run_id}] Finished syncing {rel(run_dir, tmp_path)}"
    assert "ERROR" not in done.stderr
    got = wb.run(run_id)  # a live run synced now would be closed on the server as crashed
    assert (len(got.history), got.complete, got.exit_code) == (5, True, 1)
    assert run_file(run_dir).with_suffix(".wandb.synced").exists()


def test_bounded_retries_give_up_with_error_lines_and_rc_0(wb, run_dir, tmp_path):
    run_id = read(run_file(run_dir)).run_id
    wb.inject(*[Fault(500)] * 50)
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path, cwd=tmp_path,
                      WANDB__GRAPHQL_RETRY_MAX="2", WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS="1")
    assert done.returncode == 0
    assert lines(done.stderr, run_id)[3:] == [
        f"wandb: ERROR Error initializing run: POST {wb.url}/graphql giving up after 3 attempt(s)",
        "wandb: ERROR while retrying: HTTP 500: stand-in fault: HTTP 500",
    ]
    assert [op for op in wb.operations() if "otel" not in op] == ["POST /graphql UpsertBucket -> 500"] * 3
    assert wb.runs() == {}
    assert not run_file(run_dir).with_suffix(".wandb.synced").exists()


# -- the stand-in on its own: what it answers, by W&B's protocol

def post(url: str, body: object, key: str | None = KEY) -> tuple[int, dict, dict]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null"), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def test_the_stand_in_refuses_a_wrong_key_as_wandb_does(wb):
    status, body, _ = post(f"{wb.url}/graphql", {"operationName": "Viewer", "query": "query Viewer {viewer {entity}}"},
                           key="local-" + "7" * 40)
    assert status == 401
    assert body == {"errors": [{"message": "user is not logged in", "path": ["viewer"],
                                "extensions": {"code": "PERMISSION_ERROR"}}], "data": {"viewer": None}}
    assert post(f"{wb.url}/graphql", {"operationName": "Viewer"}, key=None)[0] == 401
    assert post(f"{wb.url}/graphql", {"operationName": "Viewer"})[1]["data"]["viewer"]["entity"] == "researcher"


def test_the_stand_in_keeps_history_by_offset_and_serves_faults_in_order(wb):
    stream = f"{wb.url}/files/researcher/p/r1/file_stream"
    first = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0}', '{"_step": 1}']}}}
    assert post(stream, first)[0] == 200
    assert post(stream, first)[0] == 200  # a retried chunk lands on the same offsets
    post(stream, {"files": {"wandb-history.jsonl": {"offset": 2, "content": ['{"_step": 2}']}}, "complete": True, "exitcode": 0})
    got = wb.run("r1")
    assert ([r["_step"] for r in got.history], got.lines_received, got.complete, got.exit_code) == ([0, 1, 2], 5, True, 0)
    wb.inject(Fault(429, retry_after="7"), Fault(500), path="file_stream")
    assert post(f"{wb.url}/graphql", {"operationName": "ServerFeaturesQuery"})[0] == 200  # not the faults' path
    status, _, headers = post(stream, first)
    assert (status, headers["Retry-After"]) == (429, "7")
    assert post(stream, first)[0] == 500
    assert post(stream, first)[0] == 200
    status, body, _ = post(f"{wb.url}/graphql", {"operationName": "SomethingNew"})
    assert (status, wb.unknown) == (400, ["SomethingNew"])
