"""The command line of stage B3 (`python -m validators bugfix`; `nox -s bugfix` runs it).

    bugfix [--attempts 4] [--timeout 900] [--python PY] [key=value ...]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..artifacts import BUGFIX_REPORT
from ..llm import require_litellm, resolve_model
from ..project import Project


def register(sub: Any) -> None:
    fix = sub.add_parser("bugfix", help="run the 1-epoch validation and fix what fails (stage B3)")
    fix.add_argument("--attempts", type=int, default=4, help="fixes tried at most (default 4)")
    fix.add_argument("--timeout", type=float, default=900, help="seconds per training or test run (default 900)")
    fix.add_argument("--python", default=sys.executable, help="interpreter that trains (default: this one)")
    fix.add_argument("overrides", nargs="*", help="extra key=value overrides for the run (e.g. logger=csv)")
    fix.set_defaults(handler=bugfix)


def bugfix(project: Project, args: argparse.Namespace) -> int:
    """Run the loop, write bugfix_report.md; exit 1 while a critical error is unfixed."""
    from .loop import FixLoop
    from .report import unfixed, write

    model = resolve_model(project.answers.get("llm_model"))
    if model:  # fail before any run when the configured LLM cannot be reached through litellm
        require_litellm(f"the bugfix loop's LLM path ({model})", "pip install litellm into the project venv, "
                        "or set llm_model to 'offline' in .copier-answers.yml and unset HEPHAESTUS_LLM_MODEL")
    data = FixLoop(project, args.python, attempts=args.attempts, overrides=tuple(args.overrides),
                   run_timeout=args.timeout, test_timeout=args.timeout, llm_model=model).run()
    write(project, data, args.python)
    left = unfixed(data)
    print(f"{BUGFIX_REPORT}: {data['result']}; {len(data['attempts'])} attempt(s); "
          f"critical errors unfixed: {', '.join(i['id'] + ' ' + i['error'] for i in left) or 'none'}")
    return 1 if left else 0
