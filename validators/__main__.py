"""Command line of the validators (run from a generated project's root, usually through nox).

    python -m validators check [--stages A B1 B2]    # every gate error, then exit 1 if any
    python -m validators build-log                   # A3: PROJECT_BUILD_LOG.md
    python -m validators review                      # A4: REVIEW_REPORT.md
    python -m validators reports                     # A3 then A4 in one process (checks run once)
    python -m validators rules [--inherit]           # B1: CLAUDE.local.md or CLAUDE.inherited.md
    python -m validators env-check --env debug-cpu   # B2: env_check_report.md, mini_dataset.md, the notebook
    python -m validators docker-env [--variant gpu]  # C1: docker_env_report.md (engine, compose, GPU passthrough)
    python -m validators docker-base | wheelhouse | docker-build | container-check | deploy   # C2-C3 (docker_cli.py)
    python -m validators monitor [--url URL]         # C4: scrape the service, spec drift, docker_running_report.md
    python -m validators after-update [--stages A]   # after `copier update`: conflicts, ownership, then the gates
    python -m validators bugfix [--attempts 4]       # B3: the fix loop around the 1-epoch run; bugfix_report.md
    python -m validators guidance                    # B4: full_train_guidance.md and scripts/launch_*.sh
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import docker_cli
from .errors import GateError, HephaestusError
from .project import Project


def ask_rules(rules: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    import questionary

    out = []
    for title, text in rules:
        new = questionary.text(f"{title}: {text}\n  new wording (Enter keeps it):").unsafe_ask()
        out.append((title, new.strip() or None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validators", description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="the generated project's root")
    parser.add_argument("--exit-zero", action="store_true", help="report, but exit 0 (copier hooks: never abort a copy)")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run the stage gates and print every error")
    check.add_argument("--stages", nargs="+", default=["A"], help="A, B, or single stages like A2 B1 (default: A)")
    log = sub.add_parser("build-log", help="write PROJECT_BUILD_LOG.md (stage A3)")
    review = sub.add_parser("review", help="write REVIEW_REPORT.md (stage A4)")
    reports = sub.add_parser("reports", help="build-log then review, each task check run once")
    for report in (log, review, reports):  # copier's copy tasks: `copier recopy` keeps the project-owned reports
        report.add_argument("--if-missing", action="store_true", help="keep the report(s) if they exist")
    rules = sub.add_parser("rules", help="decide on CLAUDE.md's rules (stage B1)")
    rules.add_argument("--inherit", action="store_true", help="accept the rules as they are, without questions (CI)")
    env = sub.add_parser("env-check", help="write env_check_report.md and mini_dataset.md, run the notebook (B2)")
    env.add_argument("--env", choices=["debug-cpu", "debug-gpu"], required=True)
    docker_env = sub.add_parser("docker-env", help="write docker_env_report.md: engine, compose, GPU passthrough (C1)")
    docker_env.add_argument("--variant", choices=["cpu", "gpu"], help="the image to check for (default: the accelerator answer)")
    monitor = sub.add_parser("monitor", help="scrape the running service, check it against the SLA, write docker_running_report.md (C4)")
    monitor.add_argument("--url", help="the service's base URL (default: `url` in deploy_report.md)")
    monitor.add_argument("--timeout", type=float, default=5.0, help="seconds per HTTP request (default 5)")
    after = sub.add_parser("after-update", help="after `copier update`: list conflicts with next steps, then run the gates")
    after.add_argument("--stages", nargs="+", default=["A"], help="stages to check when no conflict is left (default: A)")
    fix = sub.add_parser("bugfix", help="run the 1-epoch validation and fix what fails (stage B3)")
    fix.add_argument("--attempts", type=int, default=4, help="fixes tried at most (default 4)")
    fix.add_argument("--timeout", type=float, default=900, help="seconds per training or test run (default 900)")
    fix.add_argument("--python", default=sys.executable, help="interpreter that trains (default: this one)")
    fix.add_argument("overrides", nargs="*", help="extra key=value overrides for the run (e.g. logger=csv)")
    sub.add_parser("guidance", help="write full_train_guidance.md and the launch scripts (stage B4)")
    docker_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    code = command(args)
    return 0 if args.exit_zero else code


def command(args: argparse.Namespace) -> int:
    project = Project(args.project.resolve())
    try:
        if args.command == "check":
            from .runner import run

            errors = run(project, args.stages)
            for error in errors:
                print(error)
            print(f"{len(errors)} error(s) in stages {' '.join(args.stages)}" if errors else f"stages {' '.join(args.stages)}: all gates pass")
            return 1 if errors else 0
        if args.command in ("build-log", "review", "reports") and args.if_missing:
            names = {"build-log": ["PROJECT_BUILD_LOG.md"], "review": ["REVIEW_REPORT.md"],
                     "reports": ["PROJECT_BUILD_LOG.md", "REVIEW_REPORT.md"]}[args.command]
            if all((project.root / name).exists() for name in names):
                print(f"kept the existing {' and '.join(names)} (project-owned; `nox -s review` rewrites "
                      f"{'them' if len(names) > 1 else 'it'})")
                return 0
        if args.command == "after-update":
            from .update import after_update

            return after_update(project, args.stages)
        if args.command in ("build-log", "reports"):
            from .build_log import write

            log = write(project)
            failed = [e["task"] for e in log["entries"] if e["result"] != "done"]
            print(f"PROJECT_BUILD_LOG.md: {len(log['entries'])} tasks, failed: {', '.join(failed) or 'none'}")
            if args.command == "build-log":
                return 1 if failed else 0
        if args.command in ("review", "reports"):
            from .review import write

            report = write(project)
            for item in report["items"]:
                print(f"{'pass' if item['passed'] else 'FAIL'}  {item['title']}")
                if not item["passed"]:
                    print("      " + "\n      ".join(item["evidence"]))
            return 0 if report["passed"] else 1
        if args.command == "rules":
            from .stage_b import claude_rules, decide_rules

            source = project.read("CLAUDE.md") or ""
            for n, (title, text) in enumerate(claude_rules(source), 1):
                print(f"{n:2d}. {title}: {text}")
            interactive = not args.inherit and sys.stdin.isatty()
            choice = "inherit"
            if interactive:
                import questionary

                choice = questionary.select("Customise these rules or inherit them?", choices=["inherit", "customise"]).unsafe_ask()
            written = decide_rules(project, inherit=choice == "inherit", ask=ask_rules if choice == "customise" else None)
            print(f"wrote {written}")
            return 0
        if args.command == "env-check":
            from .notebook import execute
            from .stage_b import write_env_report, write_mini_report

            report = write_env_report(project, args.env)
            mini = write_mini_report(project)
            figures = execute(project)
            print(f"env_check_report.md: Python {report['python_version']}, torch {report['torch']['version']}, GPU {report['gpu']}")
            print(f"mini_dataset.md: {mini['samples']} samples; notebook figures: {', '.join(figures)}")
            return 0
        if args.command == "docker-env":
            from .docker_env import REPORT, write

            data = write(project, args.variant)
            print(f"{REPORT}: engine {data['docker_version'] or 'missing'}, compose {data['compose_version'] or 'missing'}, "
                  f"GPU passthrough {'yes' if data['gpu_passthrough'] else 'no'}: {'pass' if data['passed'] else 'FAIL'}")
            for gap in data["missing"]:
                print(f"  {'required' if gap['required'] else 'optional'}: {gap['item']}: {gap['problem']}. Install: {gap['install']}")
            return 0 if data["passed"] else 1
        if args.command == "monitor":
            return monitor_command(project, args)
        if args.command == "guidance":
            from .guidance import write as write_guidance

            data = write_guidance(project)
            b = data["batch_size"]
            print(f"full_train_guidance.md: batch {b['min']}-{b['max']} (recommended {b['recommended']}), "
                  f"{data['estimates']['train_memory_gb']} GB, {data['estimates']['train_hours']} h on {data['hardware']['name']}; "
                  f"scripts: {', '.join(data['distributed']['scripts'].values())}")
            return 0
        if args.command == "bugfix":
            return bugfix_command(project, args)
        if args.command in docker_cli.COMMANDS:
            return docker_cli.run(project, args)
    except (GateError, HephaestusError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 2


def monitor_command(project: Project, args: argparse.Namespace) -> int:
    """Stage C4; exit 1 when a drift check is not met or the monitoring config fails its checks, saying which."""
    from .monitor import REPORT, write

    data = write(project, args.url, timeout=args.timeout)
    for name, f in data["endpoints"].items():
        lat = f["latency_ms"]
        print(f"{name}: {f['requests']} requests, {f['errors_5xx']} 5xx, p50/p95/p99 {lat['p50']}/{lat['p95']}/{lat['p99']} ms")
    for check in data["drift"]:
        print(f"{check['verdict']:>12}  {check['check']}: measured {check['measured']}, target {check['target']} {check['unit']}")
    mon = data["monitoring"]
    for check in mon["checks"]:
        if not check["passed"]:
            print(f"        FAIL  {check['file']} ({check['tool']}): {check['detail']}")
    status = ", ".join(f"{r['id']} {r['status']}" for r in data["requirements"])
    print(f"{REPORT}: {'pass' if data['passed'] else 'FAIL'}; {len(mon['files'])} monitoring files, {mon['alerts']} alerts, "
          f"promtool: {mon['promtool']}; README requirement status: {status}")
    return 0 if data["passed"] else 1


def bugfix_command(project: Project, args: argparse.Namespace) -> int:
    """Run the loop, write bugfix_report.md; exit 1 while a critical error is unfixed."""
    from .bugfix import bugfix
    from .bugfix_report import unfixed, write
    from .llm import require_litellm, resolve_model

    model = resolve_model(project.answers.get("llm_model"))
    if model:  # fail before any run when the configured LLM cannot be reached through litellm
        require_litellm(f"the bugfix loop's LLM path ({model})", "pip install litellm into the project venv, "
                        "or set llm_model to 'offline' in .copier-answers.yml and unset HEPHAESTUS_LLM_MODEL")
    data = bugfix(project.root, args.python, attempts=args.attempts, overrides=tuple(args.overrides),
                  run_timeout=args.timeout, test_timeout=args.timeout, llm_model=model)
    write(project, data, args.python)
    left = unfixed(data)
    print(f"bugfix_report.md: {data['result']}; {len(data['attempts'])} attempt(s); "
          f"critical errors unfixed: {', '.join(i['id'] + ' ' + i['error'] for i in left) or 'none'}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
