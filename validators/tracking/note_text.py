"""The Markdown of stage D7's notes (what a note is written from, `Run`): the body, a revision, the index, and the link
syntax the gate reads.

    text = body(run, meta, requirements, task, earlier)   # a new note's body, under its front matter
    text = revision(run, meta, changed, "2026-11-27T10:00:00Z")
    text = index([Note(path, meta, body), ...])

Links are written twice over: `[[id|title]]` for wiki-style tools (Obsidian, Foam, Zettlr) and a
shortcut reference `[id]` with its definition `[id]: id.md "title"`, which any CommonMark viewer
(GitHub, GitLab) turns into a link to the file.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import JOBS, REQUIREMENTS, RESULTS, RUN_SUMMARY, TASK
from ..job_ledger import JobRecord

OPEN_MARKER = "<!-- conclusions: open -->"
OPEN_LINE = f"{OPEN_MARKER} _Open: write what this run shows and what to try next, then delete this line._"
NOTE_ID = re.compile(r"^[0-9]{8}-[a-z0-9]+(?:-[a-z0-9]+)*$")
WIKI_LINK = re.compile(r"\[\[([^\[\]|]+)(?:\|([^\[\]]*))?\]\]")
DEFINITION = re.compile(r'^ {0,3}\[([^\[\]]+)\]:[ \t]*(\S+)(?:[ \t]+"(?:[^"\\]|\\.)*")?[ \t]*$', re.MULTILINE)
FULL_REFERENCE = re.compile(r"\]\[([^\[\]]+)\]")
SHORTCUT = re.compile(r"(?<![\[\]])\[([^\[\]]+)\](?![\[(:])")
HEADER = ("<!-- written by `nox -s note` (stage D7). Write anywhere: a later call only appends a dated revision "
          "at the end. -->")
INDEX_HEADER = ("<!-- written by `nox -s note` (stage D7) from the notes' front matter, and rewritten on every call: "
                "write in the notes, not here. -->")


@dataclass
class Run:
    """Everything a note is written from."""

    path: str                       # runs/<name>, relative to the project
    config: dict[str, Any]          # the run's resolved config.yaml ({} when missing)
    summary: dict[str, Any]         # the run's summary.json ({} when the run did not finish)
    job: JobRecord | None
    results: dict[str, Any] | None  # reports/results/<name>/results.json (D6), when it exists
    run_url: str | None

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass
class Note:
    path: Path
    meta: dict[str, Any]
    body: str

    @property
    def id(self) -> str:
        return str(self.meta.get("id") or self.path.stem)

    @property
    def open(self) -> bool:
        return OPEN_MARKER in self.body


def tidy(text: str) -> str:
    """Text fit for a wiki link's title and a definition's title: one line, no brackets, bars or quotes."""
    return " ".join(re.sub(r"[\[\]|\"]+", " ", text).split())


def value(v: Any) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, (list, dict)):
        return json.dumps(v)
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, v in data.items():
        out += flat(v, f"{prefix}{key}.") if isinstance(v, dict) and v else [(f"{prefix}{key}", v)]
    return out


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    cells = [[c.replace("|", "\\|") for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in cells)]


def link(note: Note) -> str:
    return f"[[{note.id}|{tidy(str(note.meta.get('title') or note.id))}]] ([{note.id}])"


def definition(note: Note) -> str:
    return f'[{note.id}]: {note.path.name} "{tidy(str(note.meta.get("title") or note.id))}"'


def question(run: Run, requirements: dict[str, Any], task: dict[str, Any]) -> list[str]:
    lines = ["## Question", ""]
    text = requirements.get("requirement")
    if text:
        lines += [f"From {REQUIREMENTS.path}:", "", f"> {' '.join(str(text).split())}", ""]
    else:
        lines += [f"{REQUIREMENTS.path} states no requirement: write the question here.", ""]
    model = (run.config.get("model") or {}).get("name") or run.summary.get("model")
    family = str(task.get("family", "")).replace("_", " ")
    plan = f" ({TASK.path}: `{task['model']}` for {family})" if task.get("model") else ""
    goals = [str(g) for g in requirements.get("goals") or []]
    lines.append(f"Hypothesis: {f'`{model}`' if model else 'the model'}, set up as below, meets the requirement's goals{plan}" + (":" if goals else "."))
    return lines + ([""] + [f"- {g}" for g in goals] if goals else []) + [""]


def facts(run: Run, meta: dict[str, Any]) -> list[str]:
    """The job, commit and W&B lines: the setup's, and each revision's."""
    job = run.job
    if job:
        overrides = f"; overrides: `{' '.join(job.train_args)}`" if job.train_args else ""
        page = f", [platform page]({job.url})" if job.url else ""
        lines = [f"- job: `{job.key}` on {job.backend}, state {job.state}{page}{overrides}"]
    else:
        lines = [f"- job: none: no `{JOBS.path}/<backend>-<id>.yaml` names this run (it was not run by `nox -s submit`)"]
    commit = f"`{meta['commit']}`" if meta.get("commit") else "not recorded (no job ledger or results.json names it)"
    digest = f"`{meta['config_hash']}`" if meta.get("config_hash") else "not recorded"
    lines.append(f"- commit: {commit}; config sha256: {digest}")
    lines.append(f"- W&B: [run page]({meta['run_url']})" if meta.get("run_url") else
                 "- W&B: not synced yet: `nox -s sync_agent` uploads the offline run; a later `nox -s note` records its page")
    return lines


def setup(run: Run, meta: dict[str, Any]) -> list[str]:
    lines = ["## Setup", ""]
    shape = [f"{run.summary[k]} {label}" for k, label in (("epochs", "epoch(s)"), ("global_step", "step(s)"),
                                                           ("world_size", "process(es)")) if k in run.summary]
    lines.append(f"- run: `{run.path}`" + (f": {', '.join(shape)}" if shape else ": no run summary (the run did not finish)"))
    lines += facts(run, meta) + [""]
    rows = [[f"`{k}`", f"`{value(v)}`"] for k, v in flat(meta.get("config") or {})]
    if rows:
        lines += [f"Key values of `{run.path}/config.yaml`:", "", *table(["key", "value"], rows), ""]
    else:
        lines += [f"`{run.path}/config.yaml` is missing: the run's configuration is not recorded.", ""]
    diff = (run.results or {}).get("config_diff")
    if diff:
        items = diff.items() if isinstance(diff, dict) else enumerate(diff) if isinstance(diff, list) else []
        entries = [f"- `{k}`: {value(v)}" if isinstance(diff, dict) else f"- {v if isinstance(v, str) else value(v)}"
                   for k, v in items]
        lines += [f"Difference from the defaults ({RESULTS.path}/{run.name}/results.json):", "", *entries, ""]
    return lines


def results(run: Run, meta: dict[str, Any]) -> list[str]:
    """Metrics, the SLA rows and the figures of results.json; the run's summary alone before `nox -s results`."""
    found = (run.results or {}).get("metrics") or {}
    rows = [[f"`{k}`", value(v.get("final")), value(v.get("best")), value(v.get("step"))]
            for k, v in found.items() if isinstance(v, dict)]
    rows += [[f"`{k}`", value(v), "-", "-"] for k, v in (run.summary.get("metrics") or {}).items() if k not in found]
    folder = f"{RESULTS.path}/{run.name}"
    lines = []
    if run.results is not None:
        source = run.results.get("source") or "run"
        lines += [f"Metrics from the {source} log ({folder}/summary.md has the full report):", ""]
    elif rows:
        lines += [f"Metrics from `{run.path}/{Path(RUN_SUMMARY.path).name}` (the test set, after the last epoch):", ""]
    if rows:
        lines += [*table(["metric", "final", "best", "step"], rows), ""]
    else:
        lines += ["No metrics recorded: the run has none yet.", ""]
    sla = [r for r in (run.results or {}).get("sla") or [] if isinstance(r, dict)]
    if sla:
        cells = [[value(r.get(k)) for k in sla[0]] for r in sla]
        lines += ["Against the requirement's SLA:", "", *table(list(sla[0]), cells), ""]
    for figure in meta.get("figures") or []:
        lines += [f"![{Path(figure).stem}]({figure})", ""]
    if run.results is None:
        lines += [f"No curves yet: `nox -s results -- {run.name}` draws them into {folder}/, then "
                  f"`nox -s note -- {run.name}` adds them here as a revision.", ""]
    return lines


def body(run: Run, meta: dict[str, Any], requirements: dict[str, Any], task: dict[str, Any], earlier: list[Note]) -> str:
    lines = [f"# {meta['title']}", "", HEADER, "", *question(run, requirements, task), *setup(run, meta),
             "## Results", "", *results(run, meta), "## Conclusions", "", OPEN_LINE, "", "## Links", ""]
    if earlier:
        lines += ["Earlier notes on the same question:", "", *(f"- {link(n)}" for n in earlier), ""]
    else:
        lines += ["No earlier note on this question.", ""]
    lines += ["All notes, by question: [index](index.md).", ""]
    return "\n".join(lines + [definition(n) for n in earlier]).rstrip("\n") + "\n"


def revision(run: Run, meta: dict[str, Any], changed: list[str], at: str) -> str:
    """A dated section appended at the end of the note: what is known now, and what changed since it was written."""
    lines = ["", f"## Revision {at}", "", "What `nox -s note` finds now; the sections above are kept as they are.", "",
             f"- changed since the note was written: {', '.join(changed)}" if changed else
             "- nothing changed since the note was written", *facts(run, meta), "", *results(run, meta)]
    return "\n".join(lines).rstrip("\n") + "\n"


def index(notes: list[Note]) -> str:
    """notes/index.md: the notes grouped by question (in order of each question's first note), newest first."""
    groups: dict[str, list[Note]] = {}
    for note in sorted(notes, key=lambda n: (str(n.meta.get("created")), n.id)):
        groups.setdefault(str(note.meta.get("question") or "No question recorded"), []).append(note)
    lines = ["# Notes", "", INDEX_HEADER, "",
             "This project's experiment notes by question, newest first; `open`: the conclusions are not written yet.", ""]
    for heading, members in groups.items():
        lines += [f"## {heading}", ""]
        lines += [f"- {link(n)}: {str(n.meta.get('created'))[:10]}, `{n.meta.get('run')}`" + (", open" if n.open else "")
                  for n in reversed(members)]
        lines.append("")
    if not notes:
        lines += ["No note yet: `nox -s note -- RUN` writes one.", ""]
    ordered = sorted(notes, key=lambda n: n.id)
    return "\n".join(lines + [definition(n) for n in ordered]).rstrip("\n") + "\n"


def masked(text: str) -> str:
    """`text` with fenced code blocks, inline code and HTML comments blanked out (lines kept): links there are not links."""
    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    text = re.sub(r"^ {0,3}(```|~~~).*?(?:^ {0,3}\1[^\n]*$|\Z)", blank, text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"<!--.*?-->", blank, text, flags=re.DOTALL)
    return re.sub(r"(`+)[^\n]*?\1", blank, text)
