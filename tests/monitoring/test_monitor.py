"""Stage C4 (validators/monitoring/: monitor.py, config.py, requirements_status.py) and scripts/rollback.sh.

Unit tests give exact figures worked by hand (histogram_quantile, drift verdicts, alert expressions,
the README section). The HTTP tests serve the exposition of the template's own `Metrics` class
(src/<package>/serve/metrics.py, loaded by path) over a real socket and run the CLI against it. The
rollback script runs for real with a fake `docker` and `docker-compose` that log their argv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from validators.__main__ import main
from validators.errors import HephaestusError
from validators.frontmatter import join, split
from validators.monitoring.config import (
    ALERTS,
    CONFIG_DIR,
    DASHBOARD,
    PROMETHEUS,
    alert_rules,
    metric_names,
    static_checks,
    validate_config,
    write_config,
)
from validators.monitoring.monitor import drift, histogram_quantile, resolve_url, rule_running_report
from validators.monitoring.requirements_status import END, START, quality, update_readme
from validators.project import Project

from ..helpers import write_file

ROOT = Path(__file__).resolve().parents[2]
METRICS_PY = ROOT / "template" / "src" / "{{ package_name }}" / "serve" / "metrics.py"
ROLLBACK = ROOT / "template" / "scripts" / "rollback.sh.jinja"
EXPORTED = {"http_requests_total", "http_requests_created", "http_request_duration_seconds_bucket",
            "http_request_duration_seconds_sum", "http_request_duration_seconds_count", "predict_batch_size_bucket",
            "predict_batch_size_sum", "predict_batch_size_count", "model_loaded"}
SLA = {"latency_ms": 20.0, "throughput_per_s": None, "accuracy_pct": 95.0, "f1_pct": None, "error_metric": None,
       "budget": None, "deadline_days": None}



# --- histogram_quantile -------------------------------------------------------------------------------------------

BUCKETS = [(0.01, 10.0), (0.025, 40.0), (0.05, 90.0), (0.1, 100.0), (float("inf"), 100.0)]


@pytest.mark.parametrize(("q", "expected"), [
    (0.5, 0.03),     # rank 50 in (0.025, 0.05]: 40 below, 50 inside -> 0.025 + 0.025 * 10/50
    (0.95, 0.075),   # rank 95 in (0.05, 0.1]: 90 below, 10 inside -> 0.05 + 0.05 * 5/10
    (0.99, 0.095),   # rank 99: 0.05 + 0.05 * 9/10
    (0.1, 0.01),     # rank 10 fills the first bucket exactly: its upper bound
    (0.0, 0.0),      # rank 0: the lower bound of the first bucket
])
def test_histogram_quantile_interpolates_inside_the_bucket_like_prometheus(q, expected):
    assert histogram_quantile(q, BUCKETS) == pytest.approx(expected, abs=1e-12)
    assert histogram_quantile(q, list(reversed(BUCKETS))) == pytest.approx(expected, abs=1e-12)  # order does not matter


def test_histogram_quantile_edge_cases_follow_prometheus():
    over = [(0.1, 90.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.95, over) == 0.1                             # rank in +Inf: the highest finite bound
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None  # no observations: NaN
    assert histogram_quantile(0.5, [(0.1, 5.0), (0.2, 10.0)]) is None          # no +Inf bucket: NaN
    assert histogram_quantile(1.5, BUCKETS) == float("inf") and histogram_quantile(-0.1, BUCKETS) == float("-inf")
    # a non-monotonic bucket (a scrape racing an observation) is coalesced to its predecessor's count
    assert histogram_quantile(0.5, [(0.01, 10.0), (0.025, 8.0), (0.05, 20.0), (float("inf"), 20.0)]) == pytest.approx(0.01)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_histogram_quantile_equals_prometheus_own_on_the_same_buckets(tmp_path):
    """Prometheus evaluates histogram_quantile on these series (promtool test rules); its answers must equal ours, bit for bit."""
    sets = {"a": BUCKETS, "b": [(0.1, 90.0), (float("inf"), 100.0)],
            "c": [(0.001, 0.0), (0.005, 3.0), (0.025, 7.0), (0.25, 11.0), (float("inf"), 12.0)]}
    series = [{"series": f'h_bucket{{set="{name}",le="{"+Inf" if le == float("inf") else le}"}}', "values": f"{count:g}"}
              for name, buckets in sets.items() for le, count in buckets]
    exprs = [{"expr": f'histogram_quantile({q}, h_bucket{{set="{name}"}})', "eval_time": "0m",
              "exp_samples": [{"labels": f'{{set="{name}"}}', "value": histogram_quantile(q, buckets)}]}
             for name, buckets in sets.items() for q in (0.1, 0.5, 0.9, 0.95, 0.99)]
    spec = {"rule_files": [], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": exprs}]}
    (tmp_path / "quantiles_test.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run(["promtool", "test", "rules", "quantiles_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- drift -------------------------------------------------------------------------------------------------------

def figures(p95: float | None, requests: int, errors: int) -> dict[str, dict[str, Any]]:
    one = {"requests": requests, "errors_5xx": errors, "error_ratio": errors / requests if requests else None,
           "latency_ms": {"p50": None, "p95": p95, "p99": None}, "p95_bucket_ms": [10.0, 25.0] if p95 else None}
    return {"/predict": one, "/predict/batch": {**one, "requests": 0, "errors_5xx": 0}}


def verdicts(checks: list[dict[str, Any]]) -> dict[str, tuple[Any, Any, str]]:
    return {c["check"]: (c["measured"], c["target"], c["verdict"]) for c in checks}


def test_drift_verdicts_met_not_met_not_stated_not_measured():
    assert verdicts(drift(figures(12.5, 200, 2), 1.0, {**SLA, "throughput_per_s": 100}, {"throughput_per_s": 140.2})) == {
        "latency_p95": (12.5, 20.0, "met"), "error_ratio": (0.01, 0.01, "met"),
        "throughput": (140.2, 100, "met"), "model_loaded": (1.0, 1, "met")}
    assert verdicts(drift(figures(22.0, 100, 2), 0.0, {**SLA, "throughput_per_s": 100}, {"throughput_per_s": 80})) == {
        "latency_p95": (22.0, 20.0, "not met"), "error_ratio": (0.02, 0.01, "not met"),
        "throughput": (80, 100, "not met"), "model_loaded": (0.0, 1, "not met")}
    assert verdicts(drift(figures(None, 0, 0), None, {**SLA, "latency_ms": None}, None)) == {
        "latency_p95": (None, None, "not stated"), "error_ratio": (None, 0.01, "not measured"),
        "throughput": (None, None, "not stated"), "model_loaded": (None, 1, "not measured")}
    assert verdicts(drift(figures(None, 0, 0), 1.0, SLA, None))["latency_p95"] == (None, 20.0, "not measured")
    odd = drift(figures(None, 0, 0), 1.0, {**SLA, "throughput_per_s": 10}, {"throughput_per_s": {"mean": 12}})
    assert verdicts(odd)["throughput"] == (None, 10, "not measured")  # only a number counts as a measurement
    assert drift(figures(12.5, 200, 2), 1.0, SLA, None)[0]["source"] == (  # 20 ms lies in the p95's bucket (10, 25]
        "/metrics histogram, 200 requests since start (estimate within [10.0, 25.0] ms; the SLA lies inside this "
        "bucket, so the verdict rests on the interpolation)")


def test_quality_compares_the_run_test_metrics_with_the_sla():
    regression = {"test/loss": 0.6916, "test/mae": 0.6917}
    assert quality({**SLA, "error_metric": {"name": "MAE", "value": 0.5}}, "logs/smoke_run.json", regression) == (
        "not met", "accuracy: not logged by the run (it logged test/loss 0.6916, test/mae 0.6917); MAE 0.6917 (<= 0.5) "
        "on the mini data after 1 epoch (logs/smoke_run.json)")
    assert quality({**SLA, "accuracy_pct": None, "error_metric": {"name": "MAE", "value": 0.7}}, "logs/bugfix_run.json",
                   regression) == ("met", "MAE 0.6917 (<= 0.7) on the mini data after 1 epoch (logs/bugfix_run.json)")
    assert quality({**SLA, "accuracy_pct": None}, None, {}) == ("not stated", "-")
    assert quality(SLA, None, {}) == ("not measured", "accuracy: no run summary (nox -s train_smoke)")


# --- alert rules and config checks -------------------------------------------------------------------------------

def test_alert_rules_carry_the_sla_thresholds_exactly():
    rules = alert_rules("demo_project", {**SLA, "throughput_per_s": 50})
    assert [(r["alert"], r["expr"], r["for"], r["labels"]) for r in rules] == [
        ("ServiceDown", 'up{job="demo_project"} == 0', "1m", {"severity": "critical"}),
        ("ModelNotLoaded", 'model_loaded{job="demo_project"} == 0', "1m", {"severity": "critical"}),
        ("HighErrorRatio", 'sum(rate(http_requests_total{job="demo_project",status=~"5.."}[5m])) / '
                           'sum(rate(http_requests_total{job="demo_project"}[5m])) > 0.01', "5m", {"severity": "warning"}),
        ("LatencyP95AboveSLA", 'histogram_quantile(0.95, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket'
                               '{job="demo_project",endpoint=~"/predict|/predict/batch"}[5m]))) > 0.02', "5m",
         {"severity": "warning", "sla": "latency_ms"}),
        ("ThroughputBelowSLA", 'sum(rate(predict_batch_size_sum{job="demo_project"}[5m])) < 50', "15m",
         {"severity": "info", "sla": "throughput_per_s"}),
    ]
    assert all(r["annotations"]["summary"] and r["annotations"]["description"] for r in rules)
    assert [r["alert"] for r in alert_rules("demo_project", {**SLA, "latency_ms": None})] == [
        "ServiceDown", "ModelNotLoaded", "HighErrorRatio"]


def test_metric_names_leave_out_functions_labels_and_durations():
    assert metric_names('histogram_quantile(0.95, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket'
                        '{job="x",endpoint=~"/predict"}[5m]))) > 0.02') == {"http_request_duration_seconds_bucket"}
    assert metric_names('sum(rate(a_total{status=~"5.."}[5m])) / sum without (instance) (rate(b_total[1h])) > 1e-3') == {
        "a_total", "b_total"}
    assert metric_names("up == 0 and on (job) model_loaded offset 5m < bool 1") == {"up", "model_loaded"}


def test_written_config_passes_the_static_checks_and_a_renamed_metric_fails_them(tmp_path):
    files = write_config(Project(tmp_path), "demo_project", "127.0.0.1:8000", SLA)
    assert files == ["deploy/monitoring/prometheus.yml", "deploy/monitoring/alerts.yml", "deploy/monitoring/grafana_dashboard.json"]
    folder = tmp_path / CONFIG_DIR
    prom = yaml.safe_load((folder / PROMETHEUS).read_text())
    assert prom["scrape_configs"] == [{"job_name": "demo_project", "metrics_path": "/metrics", "scrape_timeout": "5s",
                                       "static_configs": [{"targets": ["127.0.0.1:8000"]}]}]
    assert prom["rule_files"] == [ALERTS]
    assert all("#" in line for line in (folder / PROMETHEUS).read_text().splitlines())  # every key commented
    board = json.loads((folder / DASHBOARD).read_text())
    latency = next(p for p in board["panels"] if p["title"].startswith("Latency"))
    assert latency["title"] == "Latency p50 / p95 / p99 (SLA 20 ms)"
    assert latency["fieldConfig"]["defaults"]["thresholds"]["steps"][-1] == {"color": "red", "value": 0.02}
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50 {{endpoint}}", "p95 {{endpoint}}", "p99 {{endpoint}}"]
    assert [c["passed"] for c in static_checks(folder, EXPORTED)] == [True, True, True]

    alerts = folder / ALERTS
    alerts.write_text(alerts.read_text().replace("http_request_duration_seconds_bucket", "http_request_latency_seconds_bucket"))
    board_text = (folder / DASHBOARD).read_text().replace("model_loaded{", "model_ready{")
    (folder / DASHBOARD).write_text(board_text)
    checks = static_checks(folder, EXPORTED)
    assert [(c["file"], c["passed"], c["detail"]) for c in checks] == [
        ("prometheus.yml", True, "loads"),
        ("alerts.yml", False, "LatencyP95AboveSLA: http_request_latency_seconds_bucket not exported by the service"),
        ("grafana_dashboard.json", False, "Model loaded: model_ready not exported by the service"),
    ]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_promtool_accepts_the_generated_config_and_rejects_a_broken_rule(tmp_path):
    write_config(Project(tmp_path), "demo_project", "127.0.0.1:8000", {**SLA, "throughput_per_s": 50})
    result = validate_config(Project(tmp_path), EXPORTED)
    assert result["promtool"] == shutil.which("promtool") and result["passed"] is True
    assert [(c["file"], c["tool"]) for c in result["checks"]][:2] == [("prometheus.yml", "promtool"), ("alerts.yml", "promtool")]
    assert "SUCCESS: 5 rules found" in result["checks"][1]["detail"]
    alerts = tmp_path / CONFIG_DIR / ALERTS
    alerts.write_text(alerts.read_text().replace("> 0.02", "> > 0.02"))
    broken = validate_config(Project(tmp_path), EXPORTED)
    assert broken["passed"] is False and broken["checks"][1]["passed"] is False


def test_without_promtool_the_report_says_how_to_install_it(tmp_path):
    write_config(Project(tmp_path), "demo_project", "127.0.0.1:8000", SLA)
    result = validate_config(Project(tmp_path), EXPORTED, promtool=None)
    assert result["promtool"].startswith("not installed (Debian/Ubuntu: `sudo apt-get install -y prometheus`")
    assert [c["tool"] for c in result["checks"]] == ["static", "static", "static"] and result["passed"] is True


# --- README section ----------------------------------------------------------------------------------------------

ITEMS = [{"id": "R3", "name": "latency", "statement": "inference latency <= 20 ms per request", "status": "met",
          "measured": "12.5 ms (<= 20)"},
         {"id": "R6", "name": "budget", "statement": "budget: not stated", "status": "not stated", "measured": "-"}]


def test_readme_section_rewrite_is_idempotent_and_keeps_every_other_byte(tmp_path):
    before, after = "# P\r\n\nintro  \n\n## Requirements status\n\n", "\n\n## Later\n\ntrailing\t\n"
    readme = tmp_path / "README.md"
    readme.write_bytes((before + START + "\nplaceholder\n" + END + after).encode())
    assert update_readme(Project(tmp_path), ITEMS) is True
    once = readme.read_bytes().decode()
    assert once.startswith(before) and once.endswith(after)
    assert update_readme(Project(tmp_path), ITEMS) is False and readme.read_bytes().decode() == once
    assert once[len(before):len(once) - len(after)] == (
        f"{START}\n\nEach item of `docs/plan/requirements.md` against what was measured, written by `nox -s monitor` (stage C4; "
        "details in `reports/docker_running_report.md`): 1 met, 1 not stated.\n\n| id | item | requirement | status | measured |\n"
        "|---|---|---|---|---|\n| R3 | latency | inference latency <= 20 ms per request | **met** | 12.5 ms (<= 20) |\n"
        f"| R6 | budget | budget: not stated | **not stated** | - |\n\n{END}")


def test_a_readme_without_markers_gets_the_section_appended_once(tmp_path):
    (tmp_path / "README.md").write_text("# P\n\ntext\n")
    assert update_readme(Project(tmp_path), ITEMS) is True
    once = (tmp_path / "README.md").read_text()
    assert once.startswith(f"# P\n\ntext\n\n{START}\n\nEach item") and once.endswith(END + "\n")
    assert update_readme(Project(tmp_path), ITEMS) is False


# --- the CLI against a real HTTP server --------------------------------------------------------------------------

def load_metrics_module() -> Any:
    spec = importlib.util.spec_from_file_location("service_metrics", METRICS_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def service_metrics() -> Any:
    """The template's Metrics with known traffic: /predict 18 x 200 + 2 x 500, /predict/batch 5 x 200 of 8 inputs."""
    metrics = load_metrics_module().Metrics()
    metrics.model_loaded.set(1)
    metrics.requests.labels("/predict", "POST", "200").inc(18)
    metrics.requests.labels("/predict", "POST", "500").inc(2)
    metrics.requests.labels("/predict/batch", "POST", "200").inc(5)
    metrics.requests.labels("/health", "GET", "200").inc(3)
    for seconds, times in ((0.004, 10), (0.012, 8), (0.07, 2)):
        for _ in range(times):
            metrics.latency.labels("/predict").observe(seconds)
            metrics.batch_size.observe(1)
    for _ in range(5):
        metrics.latency.labels("/predict/batch").observe(0.3)
        metrics.batch_size.observe(8)
    return metrics


@pytest.fixture
def service() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1: /metrics from the template's Metrics, /health as the service answers it."""
    metrics = service_metrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                body, ctype = metrics.exposition()
            elif self.path == "/health":
                body, ctype = b'{"status": "ok", "model_loaded": true, "device": "cpu"}', "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def requirements_doc() -> dict[str, Any]:
    def item(n: int, kind: str, name: str, statement: str) -> dict[str, Any]:
        return {"id": f"R{n}", "kind": kind, "name": name, "statement": statement, "score": 0.9, "rule": "r",
                "evidence": None, "clarification": None}
    return {"schema_version": 1, "project": "demo_project", "language": "en", "requirement": "Classify digits fast.",
            "planner": {"name": "offline", "model": None, "fallback": None},
            "family": {"value": "image_classification", "score": 0.9, "evidence": ["digits"]},
            "problem_statements": ["Classify digits fast."], "goals": ["g"], "sla": SLA,
            "constraints": {"gpu": None, "gpu_memory_gb": None, "cpu_only": True, "dataset_size": None},
            "compatibility": {"python": "3.11", "torch": "2.13.0", "lightning": "2.6.6", "deployment": None},
            "items": [item(1, "problem", "problem statement", "Classify digits fast."),
                      item(2, "sla", "latency", "inference latency <= 20 ms per request"),
                      item(3, "sla", "throughput", "sustained predictions per second: not stated"),
                      item(4, "sla", "quality", "accuracy >= 95%"),
                      item(5, "sla", "budget", "budget: not stated"),
                      item(6, "constraint", "hardware", "CPU only")]}


RUN = "runs/20261125T120000Z-small_cnn"  # a run folder as scripts/train.py names it


def make_project(root: Path) -> Project:
    write_file(root / "docs/plan/requirements.md", join(requirements_doc(), "# Requirements\n"), encoding="utf-8")
    (root / "README.md").write_text(f"# demo\n\n## Requirements status\n\n{START}\nNot measured yet.\n{END}\n\n## More\n")
    write_file(root / RUN / "summary.json", json.dumps({"metrics": {"test/acc": 0.111111, "test/loss": 2.3}}))
    (root / "runs/latest").symlink_to(Path(RUN).name)  # as train.py links the newest run
    return Project(root)


def test_monitor_cli_scrapes_a_real_server_and_writes_the_exact_report(tmp_path, service, monkeypatch, capsys):
    make_project(tmp_path)
    write_file(tmp_path / "reports/deploy_report.md", join({"url": service, "throughput_per_s": 140.5}, "# Deploy\n"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no promtool: the static checks decide
    assert main(["--project", str(tmp_path), "monitor"]) == 1  # the URL comes from deploy_report.md
    data, body = split((tmp_path / "reports/docker_running_report.md").read_text())
    assert data.pop("scraped_at").endswith("Z")
    promtool = data["monitoring"].pop("promtool")
    assert promtool.startswith("not installed (")
    sources = {
        "latency": "/metrics histogram, 20 requests since start (estimate within [50.0, 100.0] ms)",
        "errors": "/metrics: 2 5xx of 25 answers (operational target, not from requirements.md)"}
    assert data == {
        "stage": "C4", "url": service, "passed": False, "health": {"status_code": 200, "device": "cpu"},
        "endpoints": {
            # p50: rank 10 fills (2.5, 5] ms; p95: rank 19 is 1 of the 2 in (50, 100]; p99: rank 19.8 -> 0.9 of the way
            "/predict": {"requests": 20, "errors_5xx": 2, "error_ratio": 0.1,
                         "latency_ms": {"p50": 5.0, "p95": 75.0, "p99": 95.0}, "p95_bucket_ms": [50.0, 100.0]},
            # 5 in (250, 500] ms: p50 = 250 + 250 * 2.5/5, p95 = 250 + 250 * 4.75/5, p99 = 250 + 250 * 4.95/5
            "/predict/batch": {"requests": 5, "errors_5xx": 0, "error_ratio": 0.0,
                               "latency_ms": {"p50": 375.0, "p95": 487.5, "p99": 497.5}, "p95_bucket_ms": [250.0, 500.0]}},
        "batch_size_mean": 2.4,
        "drift": [
            {"check": "latency_p95", "endpoint": "/predict", "measured": 75.0, "target": 20.0, "unit": "ms",
             "bound": "at most", "verdict": "not met", "source": sources["latency"]},
            {"check": "error_ratio", "endpoint": "/predict, /predict/batch", "measured": 0.08, "target": 0.01,
             "unit": "fraction", "bound": "at most", "verdict": "not met", "source": sources["errors"]},
            {"check": "throughput", "endpoint": "/predict", "measured": 140.5, "target": None, "unit": "predictions/s",
             "bound": "at least", "verdict": "not stated", "source": "reports/deploy_report.md load test (concurrent single-input requests)"},
            {"check": "model_loaded", "endpoint": "/metrics", "measured": 1.0, "target": 1, "unit": "gauge",
             "bound": "at least", "verdict": "met", "source": "model_loaded gauge"}],
        "monitoring": {"files": ["deploy/monitoring/prometheus.yml", "deploy/monitoring/alerts.yml",
                                 "deploy/monitoring/grafana_dashboard.json"], "alerts": 4,
                       "checks": [{"file": "prometheus.yml", "tool": "static", "passed": True, "detail": "loads"},
                                  {"file": "alerts.yml", "tool": "static", "passed": True,
                                   "detail": "4 expression(s), all metrics exported"},
                                  {"file": "grafana_dashboard.json", "tool": "static", "passed": True,
                                   "detail": "8 expression(s), all metrics exported"}],
                       "passed": True},
        "rollback": {"script": "scripts/rollback.sh", "strategy": "blue-green by image tag: <project>:<variant>-previous is "
                     "tagged <project>:<variant> again and compose recreates the container; see docs/specs/DOCKER_CONFIG.md"},
        "requirements": [
            {"id": "R1", "name": "problem statement", "statement": "Classify digits fast.", "status": "not measured",
             "measured": "qualitative: judge the model's predictions by hand"},
            {"id": "R2", "name": "latency", "statement": "inference latency <= 20 ms per request", "status": "not met",
             "measured": f"75 ms (<= 20), /predict: {sources['latency']}"},
            {"id": "R3", "name": "throughput", "statement": "sustained predictions per second: not stated",
             "status": "not stated",
             "measured": "140.5 predictions/s, /predict: reports/deploy_report.md load test (concurrent single-input requests)"},
            {"id": "R4", "name": "quality", "statement": "accuracy >= 95%", "status": "not met",
             "measured": f"accuracy 11.1111% (>= 95%) on the mini data after 1 epoch ({RUN}/summary.json)"},
            {"id": "R5", "name": "budget", "statement": "budget: not stated", "status": "not stated", "measured": "-"},
            {"id": "R6", "name": "hardware", "statement": "CPU only", "status": "met", "measured": "served on cpu"}],
        "readme_updated": True,
    }
    assert "| /predict | 20 | 2 | 0.1 | 5 | 75 | 95 | [50.0, 100.0] |" in body
    assert "| latency_p95 | /predict | 75 | at most 20 ms | **not met** |" in body
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith(f"# demo\n\n## Requirements status\n\n{START}\n\nEach item") and readme.endswith(f"{END}\n\n## More\n")
    assert "| R4 | quality | accuracy >= 95% | **not met** | accuracy 11.1111% (>= 95%) on the mini data" in readme
    out = capsys.readouterr().out
    assert "     not met  latency_p95: measured 75.0, target 20.0 ms" in out
    assert "docker_running_report.md: FAIL; 3 monitoring files, 4 alerts" in out
    assert list(rule_running_report(Project(tmp_path)))[0].path == "drift.latency_p95"

    before = readme
    assert main(["--project", str(tmp_path), "monitor", "--url", service + "/"]) == 1
    assert (tmp_path / "README.md").read_text() == before  # same inputs, same section
    assert split((tmp_path / "reports/docker_running_report.md").read_text())[0]["readme_updated"] is False


def test_a_service_within_the_sla_passes_and_the_gate_accepts_its_report(tmp_path, service, monkeypatch, capsys):
    make_project(tmp_path)
    doc = requirements_doc()
    doc["sla"] = {**SLA, "latency_ms": 100.0}
    write_file(tmp_path / "docs/plan/requirements.md", join(doc, "# Requirements\n"))
    monkeypatch.setattr("validators.monitoring.monitor.ERROR_RATIO_MAX", 0.1)  # this traffic has 8% 5xx
    assert main(["--project", str(tmp_path), "monitor", "--url", service]) == 0
    data = split((tmp_path / "reports/docker_running_report.md").read_text())[0]
    assert [c["verdict"] for c in data["drift"]] == ["met", "met", "not stated", "met"]
    assert list(rule_running_report(Project(tmp_path))) == []


def test_the_c4_gate_names_a_missing_readme_row_and_a_report_against_its_schema(tmp_path, service):
    project = make_project(tmp_path)
    assert main(["--project", str(tmp_path), "monitor", "--url", service]) == 1
    readme = tmp_path / "README.md"
    readme.write_text("\n".join(line for line in readme.read_text().splitlines() if not line.startswith("| R5 |")) + "\n")
    assert [str(e) for e in rule_running_report(project)][:1] == [
        "README.md: requirements-status.R5: missing: expected a row for R5 between the requirements-status markers "
        "(hint: run `nox -s monitor` against the running service)"]
    report = tmp_path / "reports/docker_running_report.md"
    data, body = split(report.read_text())
    del data["drift"]
    report.write_text(join(data, body))
    assert [str(e) for e in rule_running_report(project)] == [
        "reports/docker_running_report.md: drift: missing: expected 'drift' to be present (hint: add the missing key)"]


def test_without_a_url_or_a_deploy_report_the_error_says_what_to_run(tmp_path, capsys):
    make_project(tmp_path)
    with pytest.raises(HephaestusError, match=r"no service URL: reports/deploy_report.md has no `url` \(run `nox -s deploy` first"):
        resolve_url(Project(tmp_path), None)
    assert main(["--project", str(tmp_path), "monitor", "--url", "localhost:8000"]) == 1
    assert capsys.readouterr().err == ("error: --url 'localhost:8000' is not an http(s) URL with a host, "
                                       "e.g. http://127.0.0.1:8000\n")
    port = free_port()
    assert main(["--project", str(tmp_path), "monitor", "--url", f"http://127.0.0.1:{port}", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: could not reach http://127.0.0.1:{port}/health: [Errno 111] Connection refused. "
                          "Start the service first (`nox -s deploy`")


# --- scripts/rollback.sh -------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
if [ "$(basename "$0")" = docker ] && [ "$1" = compose ]; then exit 1; fi      # no Compose v2 plugin
if [ "$1" = image ] && [ -n "${NO_PREVIOUS:-}" ]; then exit 1; fi
exit 0
"""


@pytest.fixture
def rollback(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """scripts/rollback.sh rendered for demo_project (cpu), a fake docker and docker-compose first on PATH."""
    (tmp_path / "scripts").mkdir()
    text = jinja2.Template(ROLLBACK.read_text(), keep_trailing_newline=True).render(project_name="demo_project", accelerator="cpu")
    script = tmp_path / "scripts" / "rollback.sh"
    script.write_text(text)
    script.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "docker-compose"):
        (bin_dir / name).write_text(FAKE)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "FAKE_LOG": str(tmp_path / "calls.log"), "HEALTH_TIMEOUT": "2"}
    return script, env


COMMANDS = ["docker compose version", "docker image inspect demo_project:cpu-previous",
            "docker tag demo_project:cpu-previous demo_project:cpu",
            "docker-compose -f deploy/docker/docker-compose.yml -p demo-project --profile cpu up -d --no-build --force-recreate cpu"]


def test_rollback_script_parses_and_prints_its_usage(rollback):
    script, env = rollback
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert "set -euo pipefail" in script.read_text()
    bad = subprocess.run([str(script), "tpu"], capture_output=True, text=True, env=env)
    assert (bad.returncode, bad.stderr) == (2, "usage: scripts/rollback.sh [cpu|gpu]   (env: PORT=8000 HEALTH_TIMEOUT=60 "
                                                "COMPOSE='docker compose')\n")


def test_rollback_retags_recreates_and_waits_for_health(rollback, service):
    script, env = rollback
    port = service.rsplit(":", 1)[1]
    done = subprocess.run([str(script)], capture_output=True, text=True, env={**env, "PORT": port}, timeout=30)
    assert done.returncode == 0, done.stderr
    assert Path(env["FAKE_LOG"]).read_text().splitlines() == COMMANDS
    assert done.stdout.splitlines() == ["rollback: demo_project:cpu <- demo_project:cpu-previous",
                                        f"rollback: demo_project:cpu is healthy at http://127.0.0.1:{port}/health"]


def test_rollback_fails_when_health_never_answers(rollback):
    script, env = rollback
    port = free_port()
    done = subprocess.run([str(script), "cpu"], capture_output=True, text=True, env={**env, "PORT": str(port)}, timeout=30)
    assert done.returncode == 1
    assert Path(env["FAKE_LOG"]).read_text().splitlines() == COMMANDS
    assert done.stderr == (f"rollback: http://127.0.0.1:{port}/health did not answer 200 within 2s; look at: docker-compose "
                           "-f deploy/docker/docker-compose.yml -p demo-project --profile cpu logs cpu\n")


def test_rollback_refuses_without_a_previous_image(rollback):
    script, env = rollback
    done = subprocess.run([str(script), "gpu"], capture_output=True, text=True, env={**env, "NO_PREVIOUS": "1", "COMPOSE": "docker compose"})
    assert done.returncode == 1
    assert Path(env["FAKE_LOG"]).read_text().splitlines() == ["docker image inspect demo_project:gpu-previous"]
    assert done.stderr == ("rollback: there is no image demo_project:gpu-previous to go back to "
                           "(nox -s docker_build tags the image it replaces)\n")
