"""The docker chain without an engine: its steps' records, the probes of what is not a file (a fake `docker` on
PATH answers from a table), what it needs from the project chain, and the report of a failed build."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from validators import chain
from validators.docker import deploy, live
from validators.errors import DockerError
from validators.frontmatter import split
from validators.project import Project

from ..helpers import write_file

TAG, IMAGE, OTHER = "demo_project:cpu", "sha256:" + "a" * 64, "sha256:" + "b" * 64
BASE = "local/bookworm-python:base"
INSPECT = "inspect --format {{.State.Status}} {{.Image}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
FAKE = """#!{python}
import json, os, sys
table = json.load(open(os.environ["FAKE_DOCKER_TABLE"]))
code, out = table.get(" ".join(sys.argv[1:]), [1, ""])
print(out)
sys.exit(code)
"""


@pytest.fixture
def docker(tmp_path, monkeypatch):
    """Put a fake `docker` first on PATH; returns a function that sets its answers: {"args joined": (code, stdout)}."""
    bin_dir = tmp_path / "bin"
    exe = write_file(bin_dir / "docker", FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    table = tmp_path / "docker-table.json"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DOCKER_TABLE", str(table))
    monkeypatch.delenv("BASE_IMAGE", raising=False)

    def answers(entries: dict[str, tuple[int, str]]) -> None:
        table.write_text(json.dumps(entries))

    answers({})
    return answers


def image(tag: str, image_id: str) -> dict[str, tuple[int, str]]:
    return {f"image inspect --format {{{{.Id}}}} {tag}": (0, image_id)}


@pytest.fixture
def health():
    """A local HTTP server whose /health answers `health.status`; yields its URL holder."""
    class Handler(BaseHTTPRequestHandler):
        status = 200

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(Handler.status)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.url = f"http://127.0.0.1:{server.server_port}"
    yield Handler
    server.shutdown()


def deployed(root: Path, url: str, container: str = "0123456789ab") -> None:
    """A deploy report as `nox -s deploy` writes it (the container id all digits: YAML quotes it)."""
    write_file(root / "reports/deploy_report.md", f"---\nstage: C3\nurl: {url}\nimage: {TAG}\nimage_id: {IMAGE}\n"
                                                  f"container: '{container}'\nsmoke:\n- test: GET /health\n---\n\n# Deploy\n")


def test_the_engine_probe_asks_for_the_server(docker):
    docker({"version --format {{.Server.Version}}": (0, "20.10.24+dfsg1")})
    assert live.engine_down() == ""
    docker({"version --format {{.Server.Version}}": (1, "")})
    assert live.engine_down() == "the Docker engine does not answer (`docker version` shows no server)"


def test_without_a_docker_client_every_probe_says_the_result_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert live.docker("version") == (127, "")
    assert live.image_gone(TAG) == f"image {TAG} is gone"
    assert live.engine_down().startswith("the Docker engine does not answer")


def test_docker_base_is_needed_only_without_a_base_image_and_without_base_image_set(docker, monkeypatch):
    assert live.base_not_needed(BASE) == ""
    docker(image(BASE, IMAGE))
    assert live.base_not_needed(BASE) == f"{BASE} is there (`nox -s docker_base -- --force` rebuilds it)"
    monkeypatch.setenv("BASE_IMAGE", "python:3.11-slim")
    assert live.base_not_needed(BASE) == "BASE_IMAGE=python:3.11-slim is set: docker_build builds on it"


def test_the_build_counts_while_its_image_exists(docker):
    assert live.image_gone(TAG) == f"image {TAG} is gone"
    docker(image(TAG, IMAGE))
    assert live.image_gone(TAG) == ""


def test_the_container_check_counts_for_the_image_it_checked(docker, tmp_path):
    log = write_file(tmp_path / "reports/container_env_check.log",
                     f"# reports/container_env_check.log: stage C2\nstage: C2\nimage: {TAG}\nimage_id: {IMAGE}\nresult: pass\n")
    docker(image(TAG, IMAGE))
    assert live.checked_other_image(tmp_path, TAG) == ""
    docker(image(TAG, OTHER))
    assert live.checked_other_image(tmp_path, TAG) == f"reports/container_env_check.log is of another build of {TAG}"
    log.unlink()
    assert live.checked_other_image(tmp_path, TAG) == f"reports/container_env_check.log is of another build of {TAG}"
    docker({})
    assert live.checked_other_image(tmp_path, TAG) == f"image {TAG} is gone"


def test_the_deploy_counts_while_its_container_runs_the_image_and_answers_health(docker, tmp_path, health):
    assert live.service_down(tmp_path, TAG) == "reports/deploy_report.md names no container and url"
    deployed(tmp_path, health.url)
    assert live.service_down(tmp_path, TAG) == "the deployed container 0123456789ab is gone"
    docker({**image(TAG, IMAGE), f"{INSPECT} 0123456789ab": (0, f"running {IMAGE} starting")})
    assert live.service_down(tmp_path, TAG) == ""  # /health answers before the image's first HEALTHCHECK
    docker({**image(TAG, IMAGE), f"{INSPECT} 0123456789ab": (0, f"running {IMAGE} healthy")})
    health.status = 503
    assert live.service_down(tmp_path, TAG) == f"{health.url}/health does not answer 200 (503)"
    health.status = 200
    docker({**image(TAG, OTHER), f"{INSPECT} 0123456789ab": (0, f"running {IMAGE} healthy")})
    assert live.service_down(tmp_path, TAG) == f"the service runs another build than {TAG}"
    docker({**image(TAG, IMAGE), f"{INSPECT} 0123456789ab": (0, f"exited {IMAGE} unhealthy")})
    assert live.service_down(tmp_path, TAG) == "the deployed container 0123456789ab is exited"
    docker({**image(TAG, IMAGE), f"{INSPECT} 0123456789ab": (0, f"running {IMAGE} unhealthy")})
    assert live.service_down(tmp_path, TAG) == "the deployed container 0123456789ab is unhealthy"
    deployed(tmp_path, "http://127.0.0.1:9")  # nothing listens on the discard port
    docker({**image(TAG, IMAGE), f"{INSPECT} 0123456789ab": (0, f"running {IMAGE} healthy")})
    assert live.service_down(tmp_path, TAG).startswith("http://127.0.0.1:9/health does not answer 200 (")


def step(name: str) -> chain.Step:
    return next(s for s in chain.DOCKER if s.session == name)


def test_the_docker_chain_runs_the_c_sessions_in_order_and_gates_c4():
    assert [s.session for s in chain.DOCKER] == ["docker_env", "docker_base", "wheelhouse", "docker_build", "container_check",
                                                 "deploy", "monitor"]
    assert [(s.session, s.stages) for s in chain.DOCKER if s.stages] == [("monitor", ("C4",))]
    assert chain.CHAINS["docker"] is chain.DOCKER


def test_a_recorded_step_is_done_until_its_probe_its_inputs_or_its_outputs_say_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("BASE_IMAGE", raising=False)
    write_file(tmp_path / "deploy/docker/Dockerfile.cpu", "FROM scratch\n")
    write_file(tmp_path / "src/demo_project/serve/app.py", "app = 1\n")
    state = chain.State(tmp_path, "docker")
    build = step("docker_build")
    assert state.why_not_done(build, "debug-cpu") == "not run yet"
    state.record(build, "debug-cpu")
    assert state.why_not_done(build, "debug-cpu", lambda: "") == ""
    assert state.why_not_done(build, "debug-cpu", lambda: f"image {TAG} is gone") == f"image {TAG} is gone"
    assert state.why_not_done(build, "debug-gpu") == "last run for debug-cpu, now debug-gpu"
    monkeypatch.setenv("BASE_IMAGE", "python:3.11-slim")  # another base: another image
    assert state.why_not_done(build, "debug-cpu") == "its inputs changed"
    monkeypatch.delenv("BASE_IMAGE")
    write_file(tmp_path / "deploy/docker/Dockerfile.cpu", "FROM scratch\nRUN false\n")
    assert state.why_not_done(build, "debug-cpu", lambda: "never asked") == "its inputs changed"


def test_the_wheelhouse_output_is_the_variants_folder(tmp_path):
    state = chain.State(tmp_path, "docker")
    wheels = step("wheelhouse")
    state.record(wheels, "debug-cpu")
    assert state.why_not_done(wheels, "debug-cpu") == "wheelhouse/cpu/*.whl missing"
    write_file(tmp_path / "wheelhouse/cpu/torch-2.0-py3-none-any.whl", "")
    assert state.why_not_done(wheels, "debug-cpu") == ""


def test_a_new_deploy_report_makes_monitor_run_again(tmp_path):
    deployed(tmp_path, "http://127.0.0.1:8000")
    write_file(tmp_path / "reports/docker_running_report.md", "---\nstage: C4\n---\n")
    write_file(tmp_path / "deploy/monitoring/prometheus.yml", "scrape_configs: []\n")
    state = chain.State(tmp_path, "docker")
    state.record(step("monitor"), "debug-cpu")
    assert state.why_not_done(step("monitor"), "debug-cpu") == ""
    deployed(tmp_path, "http://127.0.0.1:8001")
    assert state.why_not_done(step("monitor"), "debug-cpu") == "its inputs changed"


def test_the_docker_chain_needs_the_project_chains_checkpoint(tmp_path):
    assert chain.unmet_needs(tmp_path, "docker") == (
        "runs/latest/checkpoints/last.ckpt is missing: the image serves the project chain's 1-epoch checkpoint: run "
        "`nox -s project` first (`nox -s train_smoke` alone makes one, without the B gates)")
    write_file(tmp_path / "runs/20260101T000000Z-mlp/checkpoints/last.ckpt", b"weights")
    (tmp_path / "runs/latest").symlink_to("20260101T000000Z-mlp")
    assert chain.unmet_needs(tmp_path, "docker") == ""
    assert chain.unmet_needs(tmp_path, "project") == ""


def test_a_failed_build_stops_the_stack_and_writes_the_next_error_report(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(deploy, "compose", lambda project, variant, *args, env=None: calls.append(args) or (0, ""))
    monkeypatch.setattr(deploy, "compose_base", lambda: ["docker", "compose"])
    write_file(tmp_path / "reports/docker_error_report_1.md", "kept")
    err = DockerError("docker build of demo_project:cpu failed (exit 1)", "read the build output above",
                      "#9 ERROR: process \"/bin/sh -c python3 -c 'raise SystemExit(1)'\" did not complete successfully")
    project = Project(tmp_path)
    monkeypatch.setattr(Project, "package", property(lambda self: "demo_project"))
    raised = deploy.build_failed(project, "cpu", err)
    assert str(raised) == ("docker build of demo_project:cpu failed (exit 1); the stack is stopped and "
                           "reports/docker_error_report_2.md written (hint: read reports/docker_error_report_2.md)")
    assert raised.output == err.output
    assert ("down", "--remove-orphans") in calls
    front, body = split((tmp_path / "reports/docker_error_report_2.md").read_text())
    assert {k: front[k] for k in ("stage", "step", "stopped", "report")} == {
        "stage": "C2", "step": "build", "stopped": True, "report": "docker_error_report_2.md"}
    assert body.lstrip().startswith("# Docker build failure (2)\n\n**build**: docker build of demo_project:cpu failed (exit 1)")
    assert "`nox -s docker` resumes at docker_build" in body and "did not complete successfully" in body
