"""Stage C4 monitoring config, written from requirements.md's SLA: Prometheus scrape config, alert rules, Grafana dashboard.

    files = write_config(project_root, project_name, "127.0.0.1:8000", sla)   # deploy/monitoring/*
    checks = validate_config(project_root, exported_metric_names)             # promtool, else static checks

One source of truth: every threshold comes from the `sla` of requirements.md, so an alert fires exactly
where the requirement is broken. The metric names are the service's (src/<package>/serve/metrics.py);
`validate_config` checks every expression against the names the running service actually exports, so a
renamed metric is caught here rather than by an alert that silently never fires.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ..artifacts import MONITORING
from ..project import Project

CONFIG_DIR = Path(MONITORING.path)
PROMETHEUS, ALERTS, DASHBOARD = "prometheus.yml", "alerts.yml", "grafana_dashboard.json"
REQUESTS = "http_requests_total"                 # counter {endpoint, method, status}
LATENCY = "http_request_duration_seconds"        # histogram {endpoint}
BATCH = "predict_batch_size"                     # histogram: inputs per prediction request
LOADED = "model_loaded"                          # gauge: 1 once the checkpoint is loaded
PREDICT = '"/predict|/predict/batch"'            # the endpoints that run the model
ERROR_RATIO_MAX = 0.01                           # 5xx answers over all answers that page someone
PROMTOOL_INSTALL = ("Debian/Ubuntu: `sudo apt-get install -y prometheus` (ships /usr/bin/promtool); elsewhere the "
                    "prometheus-<version>.linux-amd64.tar.gz archive from https://prometheus.io/download/ contains it")
SYNTHETIC = {"up"}                               # series Prometheus itself adds to every target
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan", "le"}
FUNCTION_CALL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\s*\(")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)                          # strings (label values)
    text = re.sub(r"\{[^}]*\}", "", text)                                  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                                 # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = FUNCTION_CALL.sub("(", text)                                    # function names
    words = re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text)
    return {w for w in words if w.lower() not in PROMQL_WORDS}


def seconds(ms: float) -> str:
    """`20.0` ms -> `0.02` (seconds, as the latency histogram counts them)."""
    return f"{ms / 1000:g}"


def alert_rules(job: str, sla: dict[str, Any]) -> list[dict[str, Any]]:
    """The alert rules for this SLA: down, model not loaded, 5xx ratio, and p95 latency / throughput when stated."""
    sel = f'job="{job}"'
    rules = [
        {"alert": "ServiceDown", "expr": f"up{{{sel}}} == 0", "for": "1m", "labels": {"severity": "critical"},
         "annotations": {"summary": f"{job} does not answer /metrics",
                         "description": "Prometheus could not scrape the service for 1 minute: the container is down or "
                                        "unreachable. Check `docker compose ps`; roll back with scripts/rollback.sh."}},
        {"alert": "ModelNotLoaded", "expr": f"{LOADED}{{{sel}}} == 0", "for": "1m", "labels": {"severity": "critical"},
         "annotations": {"summary": f"{job} runs without a loaded model",
                         "description": "model_loaded is 0: /health answers 503 and every prediction fails."}},
        {"alert": "HighErrorRatio",
         "expr": f'sum(rate({REQUESTS}{{{sel},status=~"5.."}}[5m])) / sum(rate({REQUESTS}{{{sel}}}[5m])) > {ERROR_RATIO_MAX:g}',
         "for": "5m", "labels": {"severity": "warning"},
         "annotations": {"summary": f"more than {ERROR_RATIO_MAX:.0%} of {job}'s answers are 5xx",
                         "description": "Server faults (not bad input, which answers 4xx) over the last 5 minutes; "
                                        "the service logs each one with its traceback."}},
    ]
    if sla.get("latency_ms") is not None:
        rules.append({
            "alert": "LatencyP95AboveSLA",
            "expr": f"histogram_quantile(0.95, sum by (le, endpoint) (rate({LATENCY}_bucket{{{sel},endpoint=~{PREDICT}}}[5m])))"
                    f" > {seconds(sla['latency_ms'])}",
            "for": "5m", "labels": {"severity": "warning", "sla": "latency_ms"},
            "annotations": {"summary": f"p95 latency of {{{{ $labels.endpoint }}}} above the SLA of {sla['latency_ms']:g} ms",
                            "description": "requirements.md sla.latency_ms; the p95 is estimated from the histogram buckets "
                                           "(linear interpolation), so it is only as precise as the bucket it falls in."}})
    if sla.get("throughput_per_s") is not None:
        rules.append({
            "alert": "ThroughputBelowSLA",
            "expr": f"sum(rate({BATCH}_sum{{{sel}}}[5m])) < {sla['throughput_per_s']:g}",
            "for": "15m", "labels": {"severity": "info", "sla": "throughput_per_s"},
            "annotations": {"summary": f"fewer than {sla['throughput_per_s']:g} predictions/s served",
                            "description": "Predictions per second over 5 minutes. The SLA is a capacity: this also fires "
                                           "when demand is low; compare with deploy_report.md's load test."}})
    return rules


def prometheus_yml(job: str, target: str) -> str:
    """The scrape config, every key commented."""
    return f"""# Prometheus config for {job}, written by `python -m validators monitor` (stage C4) from requirements.md.
# Re-run `nox -s monitor` rather than editing: the thresholds follow the SLA. Check: promtool check config prometheus.yml
global:                       # defaults for every scrape job
  scrape_interval: 15s        # how often every target's /metrics is read
  evaluation_interval: 15s    # how often the alert rules are evaluated
rule_files:                   # alert rules, relative to this file
  - {ALERTS}                  # written next to this file
scrape_configs:               # one job: the inference service
  - job_name: {job}           # the `job` label the alert rules and the dashboard select on
    metrics_path: /metrics    # the service's Prometheus endpoint (src/<package>/serve/metrics.py)
    scrape_timeout: 5s        # a scrape slower than this counts as down (`up == 0`)
    static_configs:           # fixed targets (no service discovery)
      - targets: ["{target}"]   # host:port of the service; from a Prometheus container use host.docker.internal:<port>
"""


def alerts_yml(job: str, rules: list[dict[str, Any]]) -> str:
    header = (f"# Alert rules for {job}, written by `python -m validators monitor` (stage C4) from requirements.md's sla.\n"
              "# Keys: groups[].name (rule group), rules[].alert (alert name), expr (PromQL; fires while true),\n"
              "# for (how long it must hold before firing), labels (routing: severity, the SLA field it guards),\n"
              "# annotations (summary and description shown to whoever is paged). Check: promtool check rules alerts.yml\n")
    body = yaml.safe_dump({"groups": [{"name": f"{job}-sla", "rules": rules}]}, sort_keys=False, width=1000)
    return header + body


def panel(pid: int, title: str, targets: list[tuple[str, str]], unit: str, y: int, x: int,
          threshold: float | None = None, kind: str = "timeseries") -> dict[str, Any]:
    """One Grafana panel: (expr, legend) targets, a unit, and an optional red threshold line (the SLA)."""
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    custom = {"thresholdsStyle": {"mode": "line" if threshold is not None else "off"}} if kind == "timeseries" else {}
    return {"id": pid, "type": kind, "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit, "custom": custom, "thresholds": {"mode": "absolute", "steps": steps}},
                            "overrides": []},
            "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource":
                         {"type": "prometheus", "uid": "${datasource}"}} for i, (expr, legend) in enumerate(targets)]}


def dashboard(job: str, sla: dict[str, Any]) -> dict[str, Any]:
    """A Grafana dashboard (import it, pick the Prometheus data source): traffic, latency vs SLA, errors, batches, model."""
    sel, lat = f'job="{job}"', sla.get("latency_ms")
    quantile = [(f"histogram_quantile({q}, sum by (le, endpoint) (rate({LATENCY}_bucket{{{sel},endpoint=~{PREDICT}}}[5m])))",
                 f"p{round(q * 100)} {{{{endpoint}}}}") for q in (0.5, 0.95, 0.99)]
    panels = [
        panel(1, "Requests per second", [(f"sum by (endpoint, status) (rate({REQUESTS}{{{sel}}}[5m]))", "{{endpoint}} {{status}}")],
              "reqps", 0, 0),
        panel(2, "Latency p50 / p95 / p99" + (f" (SLA {lat:g} ms)" if lat is not None else ""), quantile, "s", 0, 12,
              threshold=lat / 1000 if lat is not None else None),
        panel(3, "5xx error ratio", [(f'sum(rate({REQUESTS}{{{sel},status=~"5.."}}[5m])) / sum(rate({REQUESTS}{{{sel}}}[5m]))',
                                      "5xx / all")], "percentunit", 8, 0, threshold=ERROR_RATIO_MAX),
        panel(4, "Predictions per second" + (f" (SLA {sla['throughput_per_s']:g}/s)" if sla.get("throughput_per_s") is not None else ""),
              [(f"sum(rate({BATCH}_sum{{{sel}}}[5m]))", "predictions/s")], "short", 8, 12, threshold=sla.get("throughput_per_s")),
        panel(5, "Batch size (mean inputs per request)",
              [(f"sum(rate({BATCH}_sum{{{sel}}}[5m])) / sum(rate({BATCH}_count{{{sel}}}[5m]))", "mean batch")], "short", 16, 0),
        panel(6, "Model loaded", [(f"{LOADED}{{{sel}}}", "model_loaded")], "bool", 16, 12, kind="stat"),
    ]
    return {"title": f"{job} service", "uid": re.sub(r"[^a-zA-Z0-9_-]", "-", job)[:40], "tags": [job, "hephaestus"],
            "schemaVersion": 39, "version": 1, "editable": True, "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
            "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"}]},
            "panels": panels}


def write_config(project: Project, job: str, target: str, sla: dict[str, Any]) -> list[str]:
    """Write the three files under deploy/monitoring/; returns their project-relative paths."""
    folder = project.path(CONFIG_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROMETHEUS).write_text(prometheus_yml(job, target), encoding="utf-8")
    (folder / ALERTS).write_text(alerts_yml(job, alert_rules(job, sla)), encoding="utf-8")
    (folder / DASHBOARD).write_text(json.dumps(dashboard(job, sla), indent=2) + "\n", encoding="utf-8")
    return [str(CONFIG_DIR / name) for name in (PROMETHEUS, ALERTS, DASHBOARD)]


def unknown_names(expr: str, exported: set[str]) -> list[str]:
    return sorted(metric_names(expr) - exported - SYNTHETIC)


def static_checks(folder: Path, exported: set[str]) -> list[dict[str, Any]]:
    """Without promtool: the files parse, and every expression selects only metrics the service exports."""
    checks = []
    for name in (PROMETHEUS, ALERTS, DASHBOARD):
        path, problems = folder / name, []
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as err:
            checks.append({"file": name, "tool": "static", "passed": False, "detail": f"does not load: {err}"})
            continue
        if name == ALERTS:
            exprs = [(r.get("alert", "?"), str(r.get("expr", ""))) for g in data.get("groups", []) for r in g.get("rules", [])]
        elif name == DASHBOARD:
            exprs = [(p.get("title", "?"), str(t.get("expr", ""))) for p in data.get("panels", []) for t in p.get("targets", [])]
        else:
            exprs = []
            missing = [f for f in data.get("rule_files", []) if not (folder / f).is_file()]
            problems += [f"rule file {f} does not exist" for f in missing]
        for where, expr in exprs:
            bad = unknown_names(expr, exported)
            if bad:
                problems.append(f"{where}: {', '.join(bad)} not exported by the service")
        checks.append({"file": name, "tool": "static", "passed": not problems,
                       "detail": "; ".join(problems) or (f"{len(exprs)} expression(s), all metrics exported" if exprs else "loads")})
    return checks


def promtool_checks(folder: Path, promtool: str) -> list[dict[str, Any]]:
    out = []
    for name, argv in ((PROMETHEUS, [promtool, "check", "config", PROMETHEUS]), (ALERTS, [promtool, "check", "rules", ALERTS])):
        proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=60)
        detail = (proc.stdout + proc.stderr).strip().splitlines()
        out.append({"file": name, "tool": "promtool", "passed": proc.returncode == 0,
                    "detail": " / ".join(line.strip() for line in detail if line.strip())[:400]})
    return out


def validate_config(project: Project, exported: set[str], promtool: str | None = "auto") -> dict[str, Any]:
    """promtool's verdict on the Prometheus files when it is installed; the static checks always (they see the metric names)."""
    folder = project.path(CONFIG_DIR)
    tool = shutil.which("promtool") if promtool == "auto" else promtool
    checks = promtool_checks(folder, tool) if tool else []
    checks += static_checks(folder, exported)
    return {"promtool": tool or f"not installed ({PROMTOOL_INSTALL})", "checks": checks,
            "passed": all(c["passed"] for c in checks)}
