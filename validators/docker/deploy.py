"""Stage C3: start the service with compose, check it, measure it against the SLA of requirements.md.

    python -m validators deploy [--variant cpu] [--checkpoint runs/latest/checkpoints/last.ckpt] [--port 8000] [--requests 200]
    python -m validators deploy --down             # stop and remove the stack

`compose up` runs the image that `nox -s docker_build` made (no build here), with the checkpoint's
folder mounted read-only. Then, over real HTTP: /health, /openapi.json, /docs with every asset it
loads (and rendered by headless Chromium when one is installed: no CDN may be needed), /metrics, the
smoke tests (a prediction, a batch, a malformed body answering 422, an oversized batch answering
413), p50/p95/p99 latency of sequential requests, throughput under concurrency, and the container's
memory. Success writes deploy_report.md and the results section of README.md and leaves the stack
running (stage C4 scrapes it). A fatal failure (no image, a container that exits or never answers
/health, a failed smoke test) stops the stack and writes docker_error_report_N.md; earlier ones are kept.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

from ..artifacts import DEPLOY_FIGURE, DEPLOY_REPORT, DOCKER_ERROR, README, REQUIREMENTS
from ..errors import DeployFailure, DockerError
from ..frontmatter import join
from ..project import Project
from ..readme import write_section
from ..sla import verdict
from ..weights import weights_root
from .engine import find_compose, run_command
from .image import image_facts, image_tag

REPORT = DEPLOY_REPORT.path
FIGURE = DEPLOY_FIGURE.path
COMPOSE_FILE = "deploy/docker/docker-compose.yml"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@cache
def compose_base() -> list[str]:
    """The Compose command (stage C1 finds it), asked once per process; absent, `compose` reports it not installed."""
    found = find_compose()
    return found[0] if found else ["docker-compose"]


def compose_argv(project: Project, variant: str) -> list[str]:
    """`docker compose` (v2) or `docker-compose` (v1) on this project's compose file, project name and profile."""
    return [*compose_base(), "-f", COMPOSE_FILE, "-p", project.package.replace("_", "-"), "--profile", variant]


def compose(project: Project, variant: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str]:
    argv = [*compose_argv(project, variant), *args]
    try:
        proc = subprocess.run(argv, cwd=project.root, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not installed (see `nox -s docker_env`)"
    except subprocess.TimeoutExpired:
        return 124, f"`{' '.join(argv)}` took more than {timeout:.0f}s"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def container_state(container: str) -> tuple[str, str, int]:
    """(status, health, restart count) of a container, from `docker inspect`."""
    code, out = run_command(["docker", "inspect", "--format",
                             "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}", container])
    if code != 0 or len(out.split()) != 3:
        return "missing", "none", 0
    status, health, restarts = out.split()
    return status, health, int(restarts)


def wait_healthy(client: Any, container: str, timeout: float) -> None:
    """Return once /health answers 200; DeployFailure when the container exits, restarts or never answers."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status, health, restarts = container_state(container)
        if restarts > 0 or status in ("exited", "restarting", "dead", "missing"):
            raise DeployFailure("health", f"the container exited before /health answered 200 (status: {status}, restarts: {restarts})")
        if health == "unhealthy":
            raise DeployFailure("health", "the image's HEALTHCHECK marked the container unhealthy before /health answered 200")
        try:
            if client.get("/health", timeout=2).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.5)
    raise DeployFailure("health", f"/health did not answer 200 within {timeout:.0f}s")


def check_docs(client: Any, url: str) -> dict[str, Any]:
    """/docs and every script and stylesheet it loads come from the service; Chromium renders it when installed."""
    page = client.get("/docs")
    if page.status_code != 200:
        raise DeployFailure("docs", f"/docs answered {page.status_code}")
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)
    external = [a for a in assets if re.match(r"^(https?:)?//", a)]
    if external or not assets:
        raise DeployFailure("docs", f"/docs loads {external or 'no scripts'}: its Swagger UI must be served by the app (no internet)")
    codes = {a: client.get(a).status_code for a in assets}
    if any(code != 200 for code in codes.values()):
        raise DeployFailure("docs", f"/docs assets did not load: {codes}")
    result: dict[str, Any] = {"assets": sorted(codes), "browser": "not installed (apt-get install chromium): assets checked over HTTP"}
    browser = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    if browser:
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                              "--virtual-time-budget=15000", "--dump-dom", f"{url}/docs"], capture_output=True, text=True, timeout=120).stdout
        operations = len(re.findall(r'class="opblock opblock-', dom))
        if operations == 0:
            raise DeployFailure("docs", f"headless {Path(browser).name} rendered no Swagger UI operation from /docs", dom[-2000:])
        result["browser"] = f"{Path(browser).name} rendered {operations} operations"
    return result


def smoke(client: Any, examples: Any, root: Path, max_batch: int) -> list[dict[str, Any]]:
    """Each smoke test: name, expected and got; DeployFailure on the first that fails."""
    results = []

    def expect(name: str, response: Any, status: int, check: Any = None) -> None:
        ok = response.status_code == status and (check is None or check(response.json()))
        results.append({"test": name, "expected": status, "got": response.status_code, "passed": ok})
        if not ok:
            raise DeployFailure("smoke", f"{name}: expected {status}, got {response.status_code}", response.text[:2000])

    expect("GET /health", client.get("/health"), 200, lambda body: body.get("model_loaded") is True)
    expect("GET /openapi.json", client.get("/openapi.json"), 200, lambda body: "/predict" in body.get("paths", {}))
    expect("POST /predict", client.post("/predict", **examples.single(root)), 200, lambda body: isinstance(body, dict))
    expect("POST /predict/batch (4 inputs)", client.post("/predict/batch", **examples.batch(root, 4)), 200,
           lambda body: len(body.get("predictions", [])) == 4)
    expect("POST /predict, malformed body", client.post("/predict", **examples.MALFORMED), 422, lambda body: "detail" in body)
    expect(f"POST /predict/batch, {max_batch + 1} inputs", client.post("/predict/batch", **examples.batch(root, max_batch + 1)), 413)
    metrics = client.get("/metrics")
    expect("GET /metrics", metrics, 200)
    if "http_requests_total{" not in metrics.text:
        raise DeployFailure("smoke", "/metrics has no http_requests_total")
    return results


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between order statistics (numpy's default)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def measure(client_factory: Any, examples: Any, root: Path, requests: int, concurrency: int) -> dict[str, Any]:
    """Latency of `requests` sequential /predict calls, then throughput of `requests` calls from `concurrency` threads."""
    bodies = [examples.single(root, i) for i in range(16)]
    latencies = []
    with client_factory() as client:
        for i in range(requests):
            start = time.perf_counter()
            response = client.post("/predict", **bodies[i % len(bodies)])
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise DeployFailure("load", f"request {i} answered {response.status_code}", response.text[:2000])
    errors: list[int] = []

    def worker(count: int) -> None:
        with client_factory() as client:
            for i in range(count):
                code = client.post("/predict", **bodies[i % len(bodies)]).status_code
                if code != 200:
                    errors.append(code)

    threads = [threading.Thread(target=worker, args=(requests // concurrency,)) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    sent = requests // concurrency * concurrency
    return {"requests": requests, "latency_ms": {f"p{q}": round(percentile(latencies, q), 2) for q in (50, 95, 99)},
            "latency_mean_ms": round(statistics.fmean(latencies), 2), "concurrency": concurrency,
            "throughput_per_s": round(sent / wall, 1), "errors": len(errors), "samples_ms": latencies}


def plot_latency(samples: list[float], marks: dict[str, float], target: float | None, path: Path) -> None:
    """deploy_latency.png: the distribution of the sequential request latencies, p50/p95/p99 and the SLA marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(samples, bins=40, color="#4c72b0")
    for (name, value), style in zip(marks.items(), (":", "--", "-."), strict=True):
        ax.axvline(value, color="black", linestyle=style, label=f"{name} {value:.1f} ms")
    if target is not None:
        ax.axvline(target, color="#c44e52", linewidth=2, label=f"SLA {target:g} ms")
    ax.set(xlabel="latency of one /predict request (ms)", ylabel="requests", title=f"{len(samples)} sequential requests")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def memory_mib(container: str) -> float | None:
    code, out = run_command(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container])
    match = re.match(r"([\d.]+)\s*([KMG]i?B)", out) if code == 0 else None
    if not match:
        return None
    scale = {"K": 1 / 1024, "M": 1, "G": 1024}[match.group(2)[0]]
    return round(float(match.group(1)) * scale, 1)


def sla_checks(project: Project, load: dict[str, Any]) -> list[dict[str, Any]]:
    """Measured figures against requirements.md's SLA; a figure the SLA does not state is `not stated`."""
    front, _ = project.front(REQUIREMENTS.path)
    sla = (front or {}).get("sla") or {}
    rows = [("latency p95 (ms)", sla.get("latency_ms"), load["latency_ms"]["p95"], "max"),
            ("throughput (requests/s)", sla.get("throughput_per_s"), load["throughput_per_s"], "min")]
    out = []
    for name, target, measured, kind in rows:
        out.append({"metric": name, "target": target, "measured": measured, "verdict": verdict(measured, target, kind == "max")})
    return out


def unreadable_by_others(checkpoint: Path) -> str | None:
    """Why the service's user (UID 10001, neither owner nor group of a host file) cannot read the mounted checkpoint."""
    import stat

    file_mode, dir_mode = checkpoint.stat().st_mode, checkpoint.parent.stat().st_mode
    if checkpoint.stat().st_uid == 10001 or (file_mode & stat.S_IROTH and dir_mode & stat.S_IXOTH):
        return None
    return (f"the service runs as UID 10001 and cannot read {checkpoint} (modes {stat.filemode(file_mode)}, folder "
            f"{stat.filemode(dir_mode)}): `chmod o+r {checkpoint}` and `chmod o+rx {checkpoint.parent}`")


def next_error_report(project: Project) -> Path:
    """reports/docker_error_report_<N>.md with N one past the highest there: earlier reports are kept."""
    template = project.path(DOCKER_ERROR)
    name = re.compile(re.escape(template.name).replace(r"\{n\}", r"(\d+)"))
    numbers = [int(m.group(1)) for p in template.parent.glob("*") if (m := name.fullmatch(p.name))]
    return template.with_name(template.name.format(n=max(numbers, default=0) + 1))


DEPLOY_TODO = ("- Read the container log below; `nox -s container_check` runs the model load and the service import "
               "inside the image with their errors.\n- Fix, then `nox -s docker` resumes (or `nox -s docker_build` and "
               "`nox -s deploy` again).")


def fail(project: Project, variant: str, err: DeployFailure, env: dict[str, str], stage: str = "C3",
         todo: str = DEPLOY_TODO) -> Path:
    """Collect the logs, stop the stack, write docker_error_report_N.md."""
    _, logs = compose(project, variant, "logs", "--no-color", "--tail", "200", env=env)
    _, ps = compose(project, variant, "ps", env=env)
    code, down = compose(project, variant, "down", "--remove-orphans", env=env)
    path = next_error_report(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"stage": stage, "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "step": err.step,
            "problem": err.problem, "stopped": code == 0, "report": path.name}
    body = (f"# Docker {'build' if err.step == 'build' else 'deploy'} failure ({path.stem.rsplit('_', 1)[1]})\n\n"
            f"**{err.step}**: {err.problem}\n\n"
            f"The stack was stopped (`{' '.join(compose_argv(project, variant))} down`: exit {code}).\n\n"
            f"## What to do\n\n{todo}\n\n"
            + (f"## Detail\n\n```\n{err.detail}\n```\n\n" if err.detail else "")
            + f"## Containers\n\n```\n{ps}\n```\n\n## Container log (last 200 lines)\n\n```\n{logs}\n```\n\n## Compose down\n\n```\n{down}\n```\n")
    path.write_text(join(data, body), encoding="utf-8")
    return path


def build_failed(project: Project, variant: str, err: DockerError) -> DockerError:
    """A failed docker_build: stop the stack (no container of the project keeps running an image the code no
    longer builds), write docker_error_report_N.md with the build's output; the error to raise, naming it."""
    todo = (f"- The build's last lines are under Detail. Hint: {err.hint}.\n- Fix, then `nox -s docker` resumes at "
            "docker_build (or `nox -s docker_build`, then the later sessions).")
    path = fail(project, variant, DeployFailure("build", err.problem, err.output), {}, stage="C2", todo=todo)
    written = path.relative_to(project.root).as_posix()
    return DockerError(f"{err.problem}; the stack is stopped and {written} written", f"read {written}", err.output)


def deploy(project: Project, variant: str, checkpoint: Path, port: int, requests: int, concurrency: int = 4,
           timeout: float = 180) -> dict[str, Any]:
    """Compose up, check, measure; deploy_report.md on success, docker_error_report_N.md (and DockerError) on failure."""
    import httpx

    checkpoint = (checkpoint if checkpoint.is_absolute() else project.root / checkpoint).resolve()
    max_batch = int(os.environ.get("MAX_BATCH_SIZE", "64"))
    weights = weights_root(project)
    weights.mkdir(parents=True, exist_ok=True)  # compose would create a missing one as root
    env = {"MODEL_DIR": str(checkpoint.parent), "MODEL_FILE": checkpoint.name, "PORT": str(port), "MAX_BATCH_SIZE": str(max_batch),
           "WEIGHTS_DIR": str(weights)}
    url = f"http://127.0.0.1:{port}"
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        try:
            image = image_facts(image_tag(project, variant))
        except DockerError as err:
            raise DeployFailure("image", err.problem) from None
        if not checkpoint.is_file():
            raise DeployFailure("checkpoint", f"no checkpoint at {checkpoint} (run `nox -s train_smoke` or pass --checkpoint)")
        unreadable = unreadable_by_others(checkpoint)
        if unreadable:
            raise DeployFailure("checkpoint", unreadable)
        up_at = time.monotonic()
        code, out = compose(project, variant, "up", "-d", "--no-build", env=env)
        if code != 0:
            raise DeployFailure("compose up", f"exit {code}", out)
        code, out = compose(project, variant, "ps", "-q", variant, env=env)
        ids = [line for line in out.splitlines() if re.fullmatch(r"[0-9a-f]{12,64}", line.strip())]  # not compose's warnings
        if code != 0 or not ids:
            raise DeployFailure("compose up", "no container for the service", out)
        container = ids[-1].strip()
        sys.path.insert(0, str(project.root / "src"))
        examples = importlib.import_module(f"{project.package}.serve.examples")
        factory = lambda: httpx.Client(base_url=url, timeout=30)  # noqa: E731
        with factory() as client:
            wait_healthy(client, container, timeout)
            seconds = round(time.monotonic() - up_at, 1)
            print(f"/health answered 200 {seconds}s after `compose up`")
            docs = check_docs(client, url)
            print(f"/docs: {len(docs['assets'])} local assets; browser: {docs['browser']}")
            tests = smoke(client, examples, project.root, max_batch)
            print(f"smoke: {len(tests)} tests passed")
        load = measure(factory, examples, project.root, requests, concurrency)
    except DeployFailure as err:
        path = fail(project, variant, err, env)
        written = path.relative_to(project.root).as_posix()
        raise DockerError(f"deploy failed at {err.step}: {err.problem}; the stack is stopped and {written} written",
                          f"read {written}") from None
    load["memory_mib"] = memory_mib(container)
    checks = sla_checks(project, load)
    plot_latency(load.pop("samples_ms"), load["latency_ms"], checks[0]["target"], project.path(FIGURE))
    endpoints = {t["test"].split()[1]: t["got"] for t in tests if t["test"].startswith("GET ")} | {"/docs": 200}
    report = {"stage": "C3", "deployed_at": started, "url": url, "variant": variant, "image": image_tag(project, variant),
              "image_id": image["image_id"], "checkpoint": str(checkpoint), "container": container[:12],
              "seconds_to_healthy": seconds, "endpoints": endpoints, "docs": docs, "smoke": tests, **load, "sla": checks,
              "passed": all(c["verdict"] != "not met" for c in checks)}
    write_report(project, report)
    return report


def write_report(project: Project, report: dict[str, Any]) -> None:
    lat = report["latency_ms"]
    rows = "\n".join(f"| {c['metric']} | {c['target'] if c['target'] is not None else '-'} | {c['measured']} | {c['verdict']} |"
                     for c in report["sla"])
    results = (f"Deployed {report['image']} at {report['deployed_at']} ({report['url']}; `nox -s deploy`): healthy after "
               f"{report['seconds_to_healthy']}s, {len(report['smoke'])} smoke tests passed. Sequential latency p50 / p95 / p99: "
               f"{lat['p50']} / {lat['p95']} / {lat['p99']} ms over {report['requests']} requests; throughput "
               f"{report['throughput_per_s']} requests/s with {report['concurrency']} clients; container memory "
               f"{report['memory_mib']} MiB.\n\n| SLA (docs/plan/requirements.md) | target | measured | verdict |\n|---|---|---|---|\n{rows}\n\n"
               "![latency distribution of the deploy check](@FIGURE@)\n")
    smoke_rows = "\n".join(f"| {t['test']} | {t['expected']} | {t['got']} |" for t in report["smoke"])
    in_report = Path(FIGURE).relative_to(Path(REPORT).parent).as_posix()  # the report sits in reports/, the README at the root
    body = (f"# Deploy report (C3)\n\nResult: **{'pass' if report['passed'] else 'FAIL: an SLA is not met'}**.\n\n"
            f"{results.replace('@FIGURE@', in_report)}\n"
            f"## Endpoints\n\n{', '.join(f'{e} {code}' for e, code in report['endpoints'].items())}. /docs loads {', '.join(report['docs']['assets'])} "
            f"from the service; browser check: {report['docs']['browser']}.\n\n## Smoke tests\n\n| test | expected | got |\n"
            f"|---|---|---|\n{smoke_rows}\n\nStop the stack: `nox -s deploy -- --down`.\n")
    project.write_text(REPORT, join(report, body))
    write_section(project.path(README), "deploy-results", results.replace('@FIGURE@', FIGURE))


def down(project: Project, variant: str) -> int:
    code, out = compose(project, variant, "down", "--remove-orphans")
    print(out)
    return code
