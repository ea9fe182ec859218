"""Stages A1-A3 documents: write docs/plan/requirements.md, tech.md and task.md into a generated project.

Run by copier on `copy` (copier.yml `_tasks`), from the project folder:

    python <template>/hooks/plan_docs.py --answers .copier-answers.yml [--no-input] [--force]

It reads the answers file (the requirement never passes through a shell or a template), runs
the LLM planner when a litellm model is configured and falls back to the offline planner,
asks the clarification questions when a terminal is attached, validates all three documents
against validators/schemas/ (when jsonschema is importable; `nox -s setup` checks them otherwise)
and writes them. Existing documents are kept unless --force: `copier recopy` never clobbers
edited documents.

tech.md's measured figures are "pending" at copy time: copier's Python need not have torch, and
what the project records about itself must not depend on it. `nox -s setup` measures the models
in the project venv. With --measure (`nox -s plan` passes it, running in that venv) this hook
measures them itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the template root: hooks/, validators/

import yaml  # noqa: E402

from hooks.planner import clarify, plan  # noqa: E402
from hooks.planner import llm as llm_planner  # noqa: E402
from hooks.planner.catalog import load_catalog  # noqa: E402
from hooks.planner.llm import PlannerError  # noqa: E402
from hooks.planner.offline import analyse, choose_model  # noqa: E402
from validators.artifacts import REQUIREMENTS, TASK, TECH  # noqa: E402
from validators.errors import DependencyError, HephaestusError  # noqa: E402
from validators.generation import render  # noqa: E402
from validators.schema import schema_errors  # noqa: E402

DOCUMENTS = (REQUIREMENTS.path, TECH.path, TASK.path)


def read_answers(path: Path) -> dict[str, Any]:
    answers = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in ("project_name", "requirement", "task_family", "model") if k not in answers]
    if missing:
        raise HephaestusError(f"{path}: missing answers {', '.join(missing)}: run `copier copy` to create the project")
    return answers


def run_planner(answers: dict[str, Any], catalog: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(analysis, planner record, rationale for the model) from the LLM, or from the offline planner."""
    family, requirement = answers["task_family"], answers["requirement"]
    offline = analyse(requirement, catalog, family)
    suggested, why = choose_model(family, requirement, catalog)
    model = llm_planner.resolve_model(answers.get("llm_model"))
    record: dict[str, Any] = {"name": "offline", "model": None, "fallback": None}
    analysis = offline
    if model:
        try:
            reply = llm_planner.plan_with_llm(requirement, catalog, family, model)
            analysis, suggested, why = reply["analysis"], reply["model"], reply["choice_rationale"]
            record = {"name": "litellm", "model": model, "fallback": None}
        except (PlannerError, DependencyError) as err:
            attempts = getattr(err, "attempts", 0)
            print(f"planner: falling back to the offline planner: {err}", file=sys.stderr)
            record = {"name": "offline", "model": model,
                      "fallback": {"reason": llm_planner.redact(str(err))[:300], "attempts": attempts}}
    if suggested == answers["model"]:
        rationale = f"The planner's choice, confirmed in copier: {why}."
    else:
        rationale = (f"Chosen in copier. The planner suggested `{suggested}` because {why}; "
                     f"`{suggested}` stays available as `model={suggested}`.")
    return analysis, record, rationale


def measure(project: Path, package: str, models: list[str]) -> dict[str, dict[str, Any]]:
    """The candidates' measured figures, in this interpreter (the project venv's, under `nox -s plan`)."""
    from validators.resources import measure_candidates

    try:
        return measure_candidates(project, package, models)
    except ImportError as err:
        raise HephaestusError(f"--measure needs '{err.name}' in this Python: run the hook from the project venv "
                              "(`nox -s plan`), or leave --measure out and let `nox -s setup` measure") from err


def build_documents(answers: dict[str, Any], project: Path, *, interactive: bool,
                    measured: bool = False) -> dict[str, str]:
    catalog = load_catalog()
    analysis, record, rationale = run_planner(answers, catalog)
    if interactive:
        analysis["items"] = clarify.ask(analysis["items"])
    package = answers["project_name"].replace("-", "_")
    figures = measure(project, package, list(catalog[answers["task_family"]]["models"])) if measured else {}
    req = plan.requirements_doc(answers, analysis, record, project)
    tech = plan.tech_doc(answers, analysis, record, rationale, figures, catalog)
    task = plan.task_doc(answers, catalog)
    try:
        errors = [*schema_errors(req, REQUIREMENTS.schema, file=REQUIREMENTS.path),
                  *schema_errors(tech, TECH.schema, file=TECH.path), *schema_errors(task, TASK.schema, file=TASK.path)]
    except DependencyError:  # copier's Python without jsonschema: setup checks them in the project venv
        errors = ["the documents' schema check runs in `nox -s setup` (jsonschema is not next to copier)"]
    for error in errors:
        print(f"planner: {error}", file=sys.stderr)
    return {REQUIREMENTS.path: render.requirements_md(req), TECH.path: render.tech_md(tech, req["sla"]),
            TASK.path: render.task_md(task)}


def write(project: Path, texts: dict[str, str], force: bool) -> list[str]:
    written = []
    for name, text in texts.items():
        path = project / name
        if path.exists() and not force:
            print(f"planner: kept the existing {name} (project-owned; --force rewrites it)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=Path, default=Path(".copier-answers.yml"), help="copier's answers file")
    parser.add_argument("--project", type=Path, default=Path("."), help="the generated project's folder")
    parser.add_argument("--force", action="store_true", help="rewrite documents that already exist")
    parser.add_argument("--no-input", action="store_true", help="never ask: record clarifications unanswered")
    parser.add_argument("--measure", action="store_true", help="measure the models now (needs torch: the project venv)")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not args.force and all((project / name).exists() for name in DOCUMENTS):
        print(f"planner: {', '.join(DOCUMENTS)} exist; kept them (--force rewrites)")
        return 0
    start = time.perf_counter()
    try:
        answers = read_answers(project / args.answers if not args.answers.is_absolute() else args.answers)
        interactive = not args.no_input and sys.stdin.isatty() and sys.stdout.isatty()
        texts = build_documents(answers, project, interactive=interactive, measured=args.measure)
    except HephaestusError as err:
        print(f"planner: error: {err}", file=sys.stderr)
        return 1
    written = write(project, texts, args.force)
    print(f"planner: wrote {', '.join(written) or 'nothing'} in {time.perf_counter() - start:.1f}s")
    if TECH.path in written and not args.measure:
        print(f"planner: {TECH.path}'s measured figures are pending: `nox -s setup` measures the models in the project venv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
