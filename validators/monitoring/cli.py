"""The command line of stage C4 (`python -m validators monitor`; `nox -s monitor` runs it).

    monitor [--url URL] [--timeout 5]
"""

from __future__ import annotations

import argparse
from typing import Any

from ..artifacts import DEPLOY_REPORT, RUNNING_REPORT
from ..project import Project


def register(sub: Any) -> None:
    monitor = sub.add_parser("monitor", help=f"scrape the running service, check it against the SLA, write {RUNNING_REPORT} (C4)")
    monitor.add_argument("--url", help=f"the service's base URL (default: `url` in {DEPLOY_REPORT})")
    monitor.add_argument("--timeout", type=float, default=5.0, help="seconds per HTTP request (default 5)")
    monitor.set_defaults(handler=monitor_command)


def monitor_command(project: Project, args: argparse.Namespace) -> int:
    """Stage C4; exit 1 when a drift check is not met or the monitoring config fails its checks, saying which."""
    from .monitor import write

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
    print(f"{RUNNING_REPORT}: {'pass' if data['passed'] else 'FAIL'}; {len(mon['files'])} monitoring files, {mon['alerts']} alerts, "
          f"promtool: {mon['promtool']}; README requirement status: {status}")
    return 0 if data["passed"] else 1
