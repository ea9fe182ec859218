"""Stage D6: results.json as Markdown, for reports/results/<run>/summary.md and for the pull-request comment.

    text = markdown(results, {"loss_by_step.png": "loss_by_step.png"})               # summary.md: figures beside it
    body = markdown(results, links, marker=marker("20261126T0352Z-slurm"), limit=65536)  # the comment: uploaded images

The same sections either way: where the metrics came from, the job and its platform URL, the commit,
the W&B run URL, the final and best value of every metric, the SLA table, the config's difference from
the defaults and the curves. `images` None: no figure is linked, the text says where the PNGs are.
A body longer than `limit` (GitHub refuses comments over 65536 characters) loses config rows first.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

MARKER = "<!-- hephaestus-results:{run} -->"
SOURCES = {"csv": "the run's CSV log", "wandb": "W&B's public API"}


def marker(run: str) -> str:
    """The hidden line that finds this run's earlier comment on the pull request."""
    return MARKER.format(run=run)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def header(results: dict[str, Any]) -> list[str]:
    job = results["job"]
    job_line = "not a cluster job (no jobs/ ledger names this run folder)" if not job else (
        f"`{job['backend']}-{job['id']}` ({job['state']})" + (f": {job['url']}" if job["url"] else ""))
    return [
        f"- Run folder: `{results['run_dir']}`",
        f"- Metrics from: {SOURCES[results['source']]} ({results['source_note']})",
        f"- Job: {job_line}",
        f"- Commit: `{results['commit']}`" if results["commit"] else "- Commit: not recorded (only a job's ledger records it)",
        f"- Config hash: `{results['config_hash']}`" if results["config_hash"] else "- Config hash: not recorded",
        f"- W&B run: {results['run_url']}" if results["run_url"] else "- W&B run: not synced yet (the sync agent records it)",
    ]


def metric_table(results: dict[str, Any]) -> list[str]:
    rows = [f"| `{name}` | {fmt(m['final'])} | {m['step']} | {fmt(m['best'])} | {m['best_step']} | {m['goal']} |"
            for name, m in results["metrics"].items()]
    return ["| metric | final | at step | best | at step | better |", "|---|---|---|---|---|---|", *rows]


def sla_table(results: dict[str, Any]) -> list[str]:
    if not results["sla"]:
        return [results["sla_note"] or "The requirement states no SLA."]
    rows = [f"| {r['item']} | {('`' + r['metric'] + '`') if r['metric'] else '-'} | "
            f"{'-' if r['target'] is None else ('<= ' if r['bound'] == 'at most' else '>= ') + fmt(r['target'])} | "
            f"{fmt(r['measured'])} | {fmt(r['best'])} | **{r['verdict']}** | {fmt(r['note']) if r['note'] else ''} |"
            for r in results["sla"]]
    return ["| SLA item | metric | target | final | best | verdict | note |", "|---|---|---|---|---|---|---|", *rows]


def config_table(results: dict[str, Any], keep: int | None = None) -> list[str]:
    diff = results["config_diff"]
    if diff is None:
        return [f"Not compared: {results['config_note']}."]
    if not diff:
        return ["The run used the default config."]
    items = list(diff.items())
    shown = items if keep is None else items[:keep]
    rows = [f"| `{key}` | {fmt(d['default'])} | {fmt(d['run'])} |" for key, d in shown]
    more = ["", f"{len(items) - len(shown)} more key(s) differ: see results.json."] if len(shown) < len(items) else []
    return [f"{results['config_note']}:", "", "| key | default | this run |", "|---|---|---|", *rows, *more]


def figure_lines(results: dict[str, Any], images: dict[str, str] | None) -> list[str]:
    if images is None:
        names = ", ".join(f"`{f}`" for f in results["figures"]) or "none"
        return [f"Not uploaded: the PNGs are in `reports/results/{results['run']}/` where `nox -s results` ran ({names})."]
    return [f"![{PurePosixPath(f).stem.replace('_', ' ')}]({images[f]})" for f in results["figures"] if f in images]


def markdown(results: dict[str, Any], images: dict[str, str] | None, marker: str = "", limit: int | None = None) -> str:
    """The report as Markdown (`marker` first, when given); within `limit` characters, config rows dropped first."""
    keep: int | None = None
    while True:
        lines = ([marker] if marker else []) + [f"## Results: {results['run']}", "", *header(results), "",
                                                "### Metrics", "", *metric_table(results), "",
                                                "### Against the requirement", "", *sla_table(results), "",
                                                "### Config against the defaults", "", *config_table(results, keep), "",
                                                "### Curves", "", *figure_lines(results, images), ""]
        text = "\n".join(lines)
        rows = len(results["config_diff"] or {})
        if limit is None or len(text) <= limit or keep == 0:
            return text
        keep = max(0, (rows if keep is None else keep) // 2)
