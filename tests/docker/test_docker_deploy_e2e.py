"""Stages C1-C4 against the real engine, through `nox -s docker` from no images: the air-gapped base, the
wheelhouse, the offline build, the checks in the container, the compose deploy with real HTTP, monitoring
and its C4 gate; a second call that does nothing; a broken build that stops the chain at docker_build with
its error report and nothing running, and the call after the fix resuming there; then the single sessions'
rollback and failure paths (error reports, nothing left running).

One generated project (tabular regression: the fastest to train); each test relies on the ones before it.
The base image and this project's images are removed first, so the chain builds them all (the base once).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from validators.frontmatter import join, split

from ..helpers import render, write_file

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
SMOKE_TESTS = ["GET /health", "GET /openapi.json", "POST /predict", "POST /predict/batch (4 inputs)", "POST /predict, malformed body",
               "POST /predict/batch, 65 inputs", "GET /metrics"]


BASE = "local/bookworm-python:base"
STEPS = ["docker_env", "docker_base", "wheelhouse", "docker_build", "container_check", "deploy", "monitor"]
TIMES: dict[str, float] = {}


def nox(root: Path, *args: str, check: bool = True, timeout: int = 1200, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    env.pop("VIRTUAL_ENV", None)
    env.pop("BASE_IMAGE", None)
    result = subprocess.run([sys.executable, "-m", "nox", *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"nox {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-5000:]}\n{result.stderr[-3000:]}"
    return result


def chain(root: Path, label: str, *, check: bool = True, timeout: int = 1200) -> str:
    """`nox -s docker` on the module's port; its output (nox logs on stderr), its wall time in TIMES[label]."""
    start = time.monotonic()
    result = nox(root, "-s", "docker", check=check, timeout=timeout, env={"PORT": str(PORT)})
    TIMES[label] = round(time.monotonic() - start, 1)
    print(f"nox -s docker wall times (s): {TIMES}")
    return result.stdout + result.stderr


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def running(project: str = "demo-project") -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = render(tmp_path_factory.mktemp("deploy") / "demo_project", task_family="tabular_regression")
    for container in running():
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    subprocess.run(["docker", "image", "rm", "demo_project:cpu", "demo_project:cpu-previous", BASE], capture_output=True)
    assert subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0, "the base image is in use"
    yield root
    subprocess.run([sys.executable, "-m", "nox", "-s", "deploy", "--", "--down"], cwd=root, capture_output=True)


def test_without_a_checkpoint_the_chain_stops_at_its_first_step(project):
    out = chain(project, "no checkpoint", check=False)
    assert ("docker: stopped at docker_env: runs/latest/checkpoints/last.ckpt is missing: the image serves the project "
            "chain's 1-epoch checkpoint: run `nox -s project` first (`nox -s train_smoke` alone makes one, without the B "
            "gates)") in out
    assert not (project / ".hephaestus/chains.json").exists() and not (project / "reports/docker_env_report.md").exists()


@pytest.fixture(scope="module")
def cold(project: Path) -> str:
    """A checkpoint (train_smoke), an SLA any machine meets (verdicts are unit-tested), then `nox -s docker` from no images."""
    nox(project, "-s", "train_smoke")
    front, body = split((project / "docs/plan/requirements.md").read_text())
    front["sla"].update(latency_ms=5000, throughput_per_s=1)
    write_file(project / "docs/plan/requirements.md", join(front, body))
    return chain(project, "cold, from no images", timeout=2400)


def test_the_first_call_runs_every_step_then_the_c4_gate(cold):
    for step in STEPS:
        assert f"docker: {step} (not run yet): " in cold, step
    assert "stages C4: all gates pass" in cold
    assert f"docker: done: ran {', '.join(STEPS)}\n" in cold


def test_docker_base_is_a_debootstrapped_image_with_the_projects_python(cold):
    assert "$ debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm " in cold
    assert docker("run", "--rm", "--network", "none", BASE, "python3", "-c",
                  "import sys, venv, ensurepip; print(sys.version_info[:2])") == "(3, 11)"


def test_wheelhouse_holds_every_pin_of_the_image(project, cold):
    names = {p.name.split("-")[0].lower() for p in (project / "wheelhouse/cpu").glob("*.whl")}
    pins = [line.split("==")[0].strip().lower().replace("-", "_") for name in ("requirements-cpu.txt", "deploy/docker/requirements.txt")
            for line in (project / name).read_text().splitlines() if "==" in line and not line.startswith("#")]
    assert set(pins) <= names, f"pins without a wheel: {sorted(set(pins) - names)}"


def test_docker_build_is_offline_multi_stage_and_non_root(cold):
    assert f"--network=none --progress=plain --build-arg BASE_IMAGE={BASE} " in cold
    info = json.loads(docker("image", "inspect", "demo_project:cpu"))[0]
    assert info["Config"]["User"] == "10001"
    assert info["Config"]["Healthcheck"]["Test"][0] == "CMD"
    assert "/models/model.ckpt" in " ".join(info["Config"]["Env"])
    leftovers = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", "demo_project:cpu", "-c",
                       "ls -d /wheelhouse /tmp/requirements /root/.cache/pip 2>/dev/null; find / -xdev -name '*.whl' -not -path '/usr/share/python-wheels/*' | head -3")
    assert leftovers == "", f"the runtime image holds build leftovers: {leftovers}"


def test_container_check_loads_the_model_inside_the_image(project, cold):
    text = (project / "reports/container_env_check.log").read_text()
    log = yaml.safe_load(text)
    assert text.startswith("# reports/container_env_check.log: stage C2, checks run inside demo_project:cpu")
    assert {k: log[k] for k in ("image", "torch_version", "cuda_available", "service_import", "uid", "failures", "result")} == {
        "image": "demo_project:cpu", "torch_version": "2.13.0+cpu", "cuda_available": False, "service_import": "ok",
        "uid": 10001, "failures": [], "result": "pass"}
    assert log["model_load"].startswith("ok (TaskModule, ")


def test_deploy_serves_checks_and_measures_against_the_sla(project, cold):
    report, _ = split((project / "reports/deploy_report.md").read_text())
    assert (report["passed"], report["url"], report["image"], report["errors"]) == (True, f"http://127.0.0.1:{PORT}", "demo_project:cpu", 0)
    assert [t["test"] for t in report["smoke"] if t["passed"]] == SMOKE_TESTS
    assert report["endpoints"] == {"/health": 200, "/openapi.json": 200, "/metrics": 200, "/docs": 200}
    assert report["docs"]["assets"] == ["/static/swagger-ui-bundle.js", "/static/swagger-ui.css"]
    if any(Path(d, "chromium").exists() for d in os.environ["PATH"].split(os.pathsep)):
        assert report["docs"]["browser"].startswith("chromium rendered "), report["docs"]["browser"]
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] and report["throughput_per_s"] > 0 and report["memory_mib"] > 0
    assert [(c["metric"], c["target"], c["verdict"]) for c in report["sla"]] == [
        ("latency p95 (ms)", 5000, "met"), ("throughput (requests/s)", 1, "met")]
    assert (project / "reports/figures/deploy_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = (project / "README.md").read_text()
    assert f"Deployed demo_project:cpu at {report['deployed_at']} (http://127.0.0.1:{PORT}" in readme
    assert f"the service runs at http://127.0.0.1:{PORT}" in cold
    assert len(running()) == 1  # left running for stage C4


def test_monitor_scrapes_the_deployed_service_and_finds_no_drift(project, cold):
    deployed, _ = split((project / "reports/deploy_report.md").read_text())
    report, _ = split((project / "reports/docker_running_report.md").read_text())
    assert (report["stage"], report["url"], report["passed"]) == ("C4", deployed["url"], True)
    assert [(d["check"], d["verdict"]) for d in report["drift"]] == [
        ("latency_p95", "met"), ("error_ratio", "met"), ("throughput", "met"), ("model_loaded", "met")]
    # smoke: one good and one malformed /predict; load: 200 sequential and 200 concurrent
    assert (report["endpoints"]["/predict"]["requests"], report["endpoints"]["/predict"]["errors_5xx"]) == (402, 0)
    assert report["monitoring"]["passed"] is True
    if shutil.which("promtool"):
        assert {c["tool"] for c in report["monitoring"]["checks"]} >= {"promtool"}
    readme = (project / "README.md").read_text()
    assert "<!-- hephaestus:requirements-status:start -->" in readme and "| R1 |" in readme


def test_a_second_call_does_nothing_and_says_so(project, cold):
    before = running()
    out = chain(project, "warm, nothing to do")
    assert f"docker: docker_base: not needed ({BASE} is there (`nox -s docker_base -- --force` rebuilds it))" in out
    for step in ("docker_env", "docker_build", "container_check", "deploy"):
        assert f"docker: {step}: done, inputs unchanged, checked live" in out, step
    assert ("docker: nothing to do: every step is done and its inputs are unchanged (docker_env, wheelhouse, docker_build, "
            "container_check, deploy, monitor); not needed: docker_base") in out
    assert running() == before


def test_a_broken_build_stops_the_chain_at_docker_build_with_its_report_and_nothing_running(project, cold):
    dockerfile = project / "deploy/docker/Dockerfile.cpu"
    original = dockerfile.read_text()
    line = "COPY scripts/serve.py /app/scripts/serve.py\n"
    dockerfile.write_text(original.replace(line, line + "RUN python3 -c \"raise SystemExit('planted build failure')\"\n"))
    out = chain(project, "broken build", check=False)
    dockerfile.write_text(original)
    assert "docker: docker_build (its inputs changed): " in out
    assert ("error: docker build of demo_project:cpu failed (exit 1); the stack is stopped and reports/docker_error_report_1.md "
            "written (hint: read reports/docker_error_report_1.md)") in out
    assert ("docker: stopped at docker_build: docker_build failed (exit 1); the messages above say why. Fix it, "
            "then `nox -s docker` resumes at docker_build") in out
    assert "docker: container_check" not in out.split("docker: stopped at docker_build")[1]
    front, body = split((project / "reports/docker_error_report_1.md").read_text())
    assert {k: front[k] for k in ("stage", "step", "stopped")} == {"stage": "C2", "step": "build", "stopped": True}
    assert "planted build failure" in body
    assert running() == []  # the stack of the earlier deploy is stopped, the failed build left no container


def test_the_call_after_the_fix_resumes_at_docker_build(project):
    out = chain(project, "resumed after the fix")
    for step in ("docker_env", "wheelhouse"):
        assert f"docker: {step}: done, inputs unchanged" in out, step
    assert "docker: docker_build (not run yet): " in out
    assert re.search(r"docker: deploy \(the deployed container [0-9a-f]{12} is gone\): ", out), out
    assert "docker: monitor (its inputs changed): " in out and "stages C4: all gates pass" in out
    assert re.search(r"docker: done: ran docker_build, (container_check, )?deploy, monitor; unchanged: docker_env, wheelhouse", out)
    assert len(running()) == 1


def test_rollback_recreates_the_service_from_the_previous_image(project):
    port = split((project / "reports/deploy_report.md").read_text())[0]["url"].rsplit(":", 1)[1]
    docker("tag", "demo_project:cpu", "demo_project:cpu-previous")  # what a second docker_build leaves
    before = running()
    env = {**os.environ, "PORT": port, "MODEL_DIR": str((project / "runs/latest/checkpoints").resolve()), "MODEL_FILE": "last.ckpt", "HEALTH_TIMEOUT": "120"}
    done = subprocess.run(["bash", "scripts/rollback.sh", "cpu"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"rollback: demo_project:cpu is healthy at http://127.0.0.1:{port}/health"
    after = running()
    assert len(after) == 1 and after != before  # a new container from the re-tagged image


def test_a_service_that_never_gets_healthy_is_stopped_with_an_error_report(project, tmp_path):
    tmp_path.chmod(0o755)  # the container's user (UID 10001) reads the mounted folder as "other"
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint" * 100)
    bad.chmod(0o644)
    result = nox(project, "-s", "deploy", "--", "--port", str(free_port()), "--checkpoint", str(bad), "--timeout", "90", check=False)
    assert result.returncode != 0
    assert re.search(r"error: deploy failed at health: the container exited before /health answered 200 \(status: \w+, "
                     r"restarts: \d+\); the stack is stopped and reports/docker_error_report_2\.md written", result.stdout), result.stdout
    front, body = split((project / "reports/docker_error_report_2.md").read_text())
    assert (front["step"], front["stopped"]) == ("health", True)
    assert "UnpicklingError" in body  # the container's own log explains it
    assert running() == []


def test_a_second_failure_writes_the_next_report_and_keeps_the_first(project):
    result = nox(project, "-s", "deploy", "--", "--variant", "gpu", check=False)  # no GPU image was built
    assert "error: deploy failed at image: image demo_project:gpu does not exist; the stack is stopped" in result.stdout
    reports = sorted(p.name for p in (project / "reports").glob("docker_error_report_*.md"))
    assert reports == ["docker_error_report_1.md", "docker_error_report_2.md", "docker_error_report_3.md"]
    assert running() == []


def test_a_checkpoint_the_service_user_cannot_read_is_refused_before_compose_up(project, tmp_path):
    secret = tmp_path / "private.ckpt"
    secret.write_bytes((project / "runs/latest/checkpoints/last.ckpt").read_bytes())
    secret.chmod(0o600)
    result = nox(project, "-s", "deploy", "--", "--checkpoint", str(secret), check=False)
    assert (f"error: deploy failed at checkpoint: the service runs as UID 10001 and cannot read {secret} (modes -rw-------, "
            f"folder drwx------): `chmod o+r {secret}` and `chmod o+rx {tmp_path}`; the stack is stopped") in result.stdout
    assert split((project / "reports/docker_error_report_4.md").read_text())[0]["step"] == "checkpoint"
    assert running() == []
