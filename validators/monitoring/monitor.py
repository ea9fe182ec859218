"""Stage C4: scrape the running service, compare production with requirements.md's SLA, write docker_running_report.md.

    python -m validators monitor [--url http://127.0.0.1:8000]    # nox -s monitor; the URL defaults to deploy_report.md's
    data = write(Project(root), url)                               # the report's front matter

One run: read /health and /metrics over HTTP, compute per endpoint the request count, the 5xx ratio and
the p50/p95/p99 latency, check them against the SLA (spec drift), write the monitoring config
(monitoring_config.py) and validate it, write docker_running_report.md and the README's requirement
status (requirements_status.py). The figures are cumulative since the service started (Prometheus
counters); for a sliding window, run Prometheus with deploy/monitoring/prometheus.yml.

Latency quantiles are estimates: the service records a histogram, not every request, and the quantile
is interpolated linearly inside the bucket it falls in, exactly as Prometheus' `histogram_quantile`
does. The true value lies somewhere in that bucket (reported as `p95_bucket_ms`).
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..artifacts import DEPLOY_REPORT as DEPLOYED
from ..artifacts import README, REQUIREMENTS, ROLLBACK, RUNNING_REPORT, SPECS
from ..errors import DependencyError, GateError, HephaestusError
from ..frontmatter import join
from ..project import Project
from ..sla import verdict
from .config import (
    BATCH,
    ERROR_RATIO_MAX,
    LATENCY,
    LOADED,
    REQUESTS,
    alert_rules,
    validate_config,
    write_config,
)
from .requirements_status import END, START, statuses, update_readme

REPORT = RUNNING_REPORT.path
DEPLOY_REPORT = DEPLOYED.path
ROLLBACK_SCRIPT = ROLLBACK.path
ENDPOINTS = ("/predict", "/predict/batch")      # the endpoints that run the model
Buckets = list[tuple[float, float]]             # (upper bound `le`, cumulative count), in any order


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile (promql/quantile.go) on one cumulative histogram; None where it gives NaN.

    The rank q * total falls in the first bucket whose cumulative count reaches it; the quantile is
    interpolated linearly between that bucket's lower and upper bound. Past the last finite bound the
    answer is that bound (the +Inf bucket has no width to interpolate in).
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    counts, running = [], 0.0
    for _, count in ordered:  # counts are cumulative: make them monotonic as Prometheus does
        running = max(running, count)
        counts.append(running)
    total = counts[-1]
    if total == 0:
        return None
    rank = q * total
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[b][0], counts[b]
    if b > 0:
        start, count, rank = ordered[b - 1][0], count - counts[b - 1], rank - counts[b - 1]
    return start + (end - start) * (rank / count)


def bucket_of(q: float, buckets: Buckets) -> tuple[float, float] | None:
    """(lower, upper) bound of the bucket the q-quantile falls in: the estimate's uncertainty."""
    ordered = sorted(buckets)
    total = ordered[-1][1] if ordered else 0
    if not total:
        return None
    b = next(i for i, (_, c) in enumerate(ordered) if c >= q * total)
    return (ordered[b - 1][0] if b else 0.0), ordered[b][0]


def fetch(url: str, timeout: float) -> tuple[int, str]:
    """(status, body) of a GET; an unreachable service is a HephaestusError saying how to start it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise HephaestusError(f"could not reach {url}: {reason}. Start the service first (`nox -s deploy`, or "
                              "`nox -s serve` for a local one) or pass --url with its address") from err


def parse(text: str) -> list[Any]:
    """The metric families of a Prometheus text exposition (prometheus_client's own parser)."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError as err:
        raise DependencyError("prometheus_client", "parsing the service's /metrics", "pip install prometheus-client "
                              "(it is in requirements-serve.txt)") from err
    return list(text_string_to_metric_families(text))


def exported_names(families: list[Any]) -> set[str]:
    """Every series name the exposition defines, including histogram and counter suffixes with no sample yet."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "gauge": ("",)}
    names = {s.name for f in families for s in f.samples}
    return names | {f.name + suffix for f in families for suffix in suffixes.get(f.type, ("",))}


def endpoint_figures(families: list[Any]) -> dict[str, dict[str, Any]]:
    """Per model endpoint: requests, 5xx errors, error ratio, latency p50/p95/p99 (ms) and the p95's bucket."""
    samples = [s for f in families for s in f.samples]
    out = {}
    for endpoint in ENDPOINTS:
        answers = [s for s in samples if s.name == REQUESTS and s.labels.get("endpoint") == endpoint]
        requests = int(sum(s.value for s in answers))
        errors = int(sum(s.value for s in answers if s.labels.get("status", "").startswith("5")))
        buckets = [(float(s.labels["le"]), s.value) for s in samples
                   if s.name == f"{LATENCY}_bucket" and s.labels.get("endpoint") == endpoint]
        latency = {f"p{round(q * 100)}": ms(histogram_quantile(q, buckets)) for q in (0.5, 0.95, 0.99)}
        bounds = bucket_of(0.95, buckets)
        out[endpoint] = {"requests": requests, "errors_5xx": errors, "error_ratio": round(errors / requests, 6) if requests else None,
                         "latency_ms": latency, "p95_bucket_ms": [ms(bounds[0]), ms(bounds[1])] if bounds else None}
    return out


def ms(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return seconds * 1000 if math.isinf(seconds) else round(seconds * 1000, 3)


def sample(families: list[Any], name: str) -> float | None:
    return next((s.value for f in families for s in f.samples if s.name == name), None)


def drift(figures: dict[str, dict[str, Any]], loaded: float | None, sla: dict[str, Any],
          deploy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Production against the SLA: p95 latency of /predict, 5xx ratio of the model endpoints, deploy's throughput, the model."""
    one, target = figures["/predict"], sla.get("latency_ms")
    bucket = one["p95_bucket_ms"]
    doubt = "; the SLA lies inside this bucket, so the verdict rests on the interpolation" if (
        bucket and target is not None and bucket[0] < target < bucket[1]) else ""
    total = sum(f["requests"] for f in figures.values())
    errors = sum(f["errors_5xx"] for f in figures.values())
    throughput = deploy.get("throughput_per_s") if deploy else None
    throughput = throughput if isinstance(throughput, (int, float)) and not isinstance(throughput, bool) else None
    return [
        {"check": "latency_p95", "endpoint": "/predict", "measured": one["latency_ms"]["p95"], "target": target,
         "unit": "ms", "bound": "at most", "verdict": verdict(one["latency_ms"]["p95"], target, True),
         "source": f"/metrics histogram, {one['requests']} requests since start (estimate within {bucket} ms{doubt})"},
        {"check": "error_ratio", "endpoint": "/predict, /predict/batch", "measured": round(errors / total, 6) if total else None,
         "target": ERROR_RATIO_MAX, "unit": "fraction", "bound": "at most",
         "verdict": verdict(errors / total if total else None, ERROR_RATIO_MAX, True),
         "source": f"/metrics: {errors} 5xx of {total} answers (operational target, not from requirements.md)"},
        {"check": "throughput", "endpoint": "/predict", "measured": throughput, "target": sla.get("throughput_per_s"),
         "unit": "predictions/s", "bound": "at least", "verdict": verdict(throughput, sla.get("throughput_per_s"), False),
         "source": f"{DEPLOY_REPORT} load test (concurrent single-input requests)" if throughput is not None
                   else f"no throughput_per_s in {DEPLOY_REPORT}"},
        {"check": "model_loaded", "endpoint": "/metrics", "measured": loaded, "target": 1, "unit": "gauge", "bound": "at least",
         "verdict": verdict(loaded, 1, False), "source": f"{LOADED} gauge"},
    ]


def deploy_report(project: Project) -> dict[str, Any] | None:
    """The front matter of the C3 report, None when there is none (or it does not parse)."""
    return project.front(DEPLOY_REPORT)[0] if (project.root / DEPLOY_REPORT).is_file() else None


def resolve_url(project: Project, url: str | None) -> str:
    """--url, else `url` of deploy_report.md's front matter; neither is an error that says what to do."""
    if url:
        return url.rstrip("/")
    deploy = deploy_report(project)
    if deploy and deploy.get("url"):
        return str(deploy["url"]).rstrip("/")
    raise HephaestusError(f"no service URL: {DEPLOY_REPORT} has no `url` (run `nox -s deploy` first, which starts the "
                          "service and records it) and no --url was given (e.g. `nox -s monitor -- --url http://127.0.0.1:8000`)")


def requirements(project: Project) -> dict[str, Any]:
    """requirements.md's front matter; its first error (missing, unparsable, against the schema) is raised."""
    data, errors = project.validated(REQUIREMENTS.path, REQUIREMENTS.schema)
    if data is None:
        raise errors[0]
    return data


def target_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise HephaestusError(f"--url {url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8000")
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def write(project: Project, url: str | None = None, timeout: float = 5.0, promtool: str | None = "auto") -> dict[str, Any]:
    """Scrape, check, write the config, docker_running_report.md and the README status; returns the report's front matter."""
    req = requirements(project)
    url = resolve_url(project, url)
    target = target_of(url)
    health_code, health_body = fetch(f"{url}/health", timeout)
    metrics_code, text = fetch(f"{url}/metrics", timeout)
    if metrics_code != 200:
        raise HephaestusError(f"{url}/metrics answered {metrics_code}, not 200: is this the project's service?")
    families = parse(text)
    try:
        health = json.loads(health_body)
    except ValueError:
        health = {}
    figures = endpoint_figures(families)
    checks = drift(figures, sample(families, LOADED), req["sla"], deploy_report(project))
    files = write_config(project, req["project"], target, req["sla"])
    validation = validate_config(project, exported_names(families), promtool)
    device = health.get("device") if isinstance(health, dict) else None
    items = statuses(project, req, checks, device)
    readme = update_readme(project, items)
    data = {"stage": "C4", "url": url, "scraped_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "passed": validation["passed"] and not any(c["verdict"] == "not met" for c in checks),
            "health": {"status_code": health_code, "device": device},
            "endpoints": figures, "batch_size_mean": batch_mean(families), "drift": checks,
            "monitoring": {"files": files, "alerts": len(alert_rules(req["project"], req["sla"])), **validation},
            "rollback": {"script": ROLLBACK_SCRIPT, "strategy": "blue-green by image tag: <project>:<variant>-previous is "
                         f"tagged <project>:<variant> again and compose recreates the container; see {SPECS}/DOCKER_CONFIG.md"},
            "requirements": items, "readme_updated": readme}
    project.write_text(REPORT, join(data, body(data)))
    return data


def batch_mean(families: list[Any]) -> float | None:
    total, count = sample(families, f"{BATCH}_sum"), sample(families, f"{BATCH}_count")
    return round(total / count, 3) if total is not None and count else None


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def body(data: dict[str, Any]) -> str:
    """The report's Markdown: endpoints, drift checks, monitoring files, requirement status, rollback."""
    rows = [f"| {e} | {f['requests']} | {f['errors_5xx']} | {fmt(f['error_ratio'])} | {fmt(f['latency_ms']['p50'])} | "
            f"{fmt(f['latency_ms']['p95'])} | {fmt(f['latency_ms']['p99'])} | {fmt(f['p95_bucket_ms'])} |"
            for e, f in data["endpoints"].items()]
    drift_rows = [f"| {c['check']} | {c['endpoint']} | {fmt(c['measured'])} | {c['bound']} {fmt(c['target'])} {c['unit']} | "
                  f"**{c['verdict']}** | {c['source']} |" for c in data["drift"]]
    mon = data["monitoring"]
    check_rows = [f"| {c['file']} | {c['tool']} | {'pass' if c['passed'] else 'FAIL'} | {c['detail']} |" for c in mon["checks"]]
    req_rows = [f"| {r['id']} | {r['name']} | {r['status']} | {r['measured']} |" for r in data["requirements"]]
    return (f"# Service in production (C4)\n\nScraped {data['url']}/metrics at {data['scraped_at']}; /health answered "
            f"{data['health']['status_code']} (device {data['health']['device'] or '-'}). Result: **{'pass' if data['passed'] else 'FAIL'}**.\n\n"
            "Figures are cumulative since the service started. Latency quantiles are estimated from the histogram buckets "
            "by linear interpolation (as Prometheus' `histogram_quantile`): the true p95 lies in the bucket shown.\n\n"
            "## Endpoints\n\n| endpoint | requests | 5xx | error ratio | p50 ms | p95 ms | p99 ms | p95 bucket ms |\n"
            "|---|---:|---:|---:|---:|---:|---:|---|\n" + "\n".join(rows) +
            f"\n\nMean batch size: {fmt(data['batch_size_mean'])}.\n\n## Spec drift (production against requirements.md)\n\n"
            "| check | endpoint | measured | target | verdict | source |\n|---|---|---:|---|---|---|\n" + "\n".join(drift_rows) +
            f"\n\n## Monitoring config\n\nFiles: {', '.join(f'`{f}`' for f in mon['files'])}; {mon['alerts']} alert rules. "
            f"promtool: {mon['promtool']}.\n\n| file | checked by | result | detail |\n|---|---|---|---|\n" + "\n".join(check_rows) +
            "\n\n## Requirement items\n\n| id | item | status | measured |\n|---|---|---|---|\n" + "\n".join(req_rows) +
            f"\n\n## Rollback\n\n`{data['rollback']['script']}`: {data['rollback']['strategy']}.\n")


def rule_running_report(project: Project) -> Iterator[GateError]:
    """C4 gate: the report matches its schema, the metrics were scraped, every requirement item is in the README."""
    data, errors = project.validated(REPORT, "docker_running_report")
    if data is None:
        yield from errors
        return
    hint = "run `nox -s monitor` against the running service"
    if not any(f["requests"] for f in data["endpoints"].values()):
        yield GateError(REPORT, "endpoints", 0, "requests to /predict or /predict/batch in the scraped metrics",
                        "send traffic first (nox -s deploy runs smoke and latency requests), then " + hint)
    req = requirements(project)
    listed = {i["id"] for i in data["requirements"]}
    for item in req["items"]:
        if item["id"] not in listed:
            yield GateError(REPORT, f"requirements.{item['id']}", None, f"a status for requirement item {item['id']}", hint)
    readme = project.read(README.path) or ""
    start, end = readme.find(START), readme.find(END)
    section_text = readme[start:end] if 0 <= start < end else ""
    for item in req["items"]:
        if f"| {item['id']} |" not in section_text:
            yield GateError(README.path, f"requirements-status.{item['id']}", None,
                            f"a row for {item['id']} between the requirements-status markers", hint)
    for check in data["drift"]:
        if check["verdict"] == "not met":
            yield GateError(REPORT, f"drift.{check['check']}", check["measured"],
                            f"{check['bound']} {check['target']} {check['unit']} (requirements.md sla)",
                            "fix the cause (see the report), redeploy, then " + hint)
