"""The command line of the Docker stages C1-C3 (`python -m validators <command>`; nox sessions run them).

    docker-env        C1: docker_env_report.md (engine, Compose, GPU passthrough)
    docker-base       debootstrap + `docker import`: the air-gapped base image (root)
    wheelhouse        `pip wheel` of the image's pins into wheelhouse/<variant>/
    docker-build      hadolint, then an offline BuildKit build of deploy/docker/Dockerfile.<variant>; a failure
                      stops the stack and writes docker_error_report_N.md
    container-check   checks inside the image: container_env_check.log
    deploy            compose up, endpoint and smoke checks, latency/throughput/memory: deploy_report.md
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..artifacts import CHECKPOINT, DOCKER_ENV
from ..errors import DockerError
from ..project import Project

COMMANDS = ("docker-base", "wheelhouse", "docker-build", "container-check", "deploy")


def register(sub: Any) -> None:
    """Add the C1-C3 subcommands to the validators' argument parser."""
    def variant(p: argparse.ArgumentParser) -> None:
        p.add_argument("--variant", choices=["cpu", "gpu"], help="the image (default: the accelerator answer)")

    env = sub.add_parser("docker-env", help=f"write {DOCKER_ENV}: engine, compose, GPU passthrough (C1)")
    env.add_argument("--variant", choices=["cpu", "gpu"], help="the image to check for (default: the accelerator answer)")
    env.set_defaults(handler=docker_env)

    base = sub.add_parser("docker-base", help="make local/<distro>-python:base with debootstrap and docker import (C2)")
    base.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    base.add_argument("--mirror", help="the distribution mirror (default: validators/base_images.yml)")
    base.add_argument("--save", type=Path, help="also `docker save` it, gzipped, to this file (carry it to an air-gapped host)")
    wheels = sub.add_parser("wheelhouse", help="pip wheel the image's pins into wheelhouse/<variant>/ (C2)")
    variant(wheels)
    wheels.add_argument("--pip-python", help="a Python with pip, the project's version (default: .venvs/pip, made with venv)")
    build = sub.add_parser("docker-build", help="lint and build the image offline from the wheelhouse (C2)")
    variant(build)
    build.add_argument("--base-image", help="BASE_IMAGE (default: $BASE_IMAGE, the local base if built, else python:<ver>-slim)")
    check = sub.add_parser("container-check", help="run the checks inside the image: container_env_check.log (C2)")
    variant(check)
    check.add_argument("--checkpoint", type=Path, default=Path(CHECKPOINT.path), help="the weights to mount")
    deploy = sub.add_parser("deploy", help="compose up, check and measure the service: deploy_report.md (C3)")
    variant(deploy)
    deploy.add_argument("--checkpoint", type=Path, default=Path(CHECKPOINT.path), help="the weights to serve")
    deploy.add_argument("--port", type=int, default=int(os.environ["PORT"]) if os.environ.get("PORT", "").isdigit() else 8000,
                        help="host port of the service (default: $PORT, else 8000)")
    deploy.add_argument("--requests", type=int, default=200, help="requests for the latency and throughput figures")
    deploy.add_argument("--concurrency", type=int, default=4, help="client threads for the throughput figure")
    deploy.add_argument("--timeout", type=float, default=180, help="seconds to wait for /health")
    deploy.add_argument("--down", action="store_true", help="only stop and remove the stack")
    for parser in (base, wheels, build, check, deploy):
        parser.set_defaults(handler=run)


def docker_env(project: Project, args: argparse.Namespace) -> int:
    from .engine import REPORT, write

    data = write(project, args.variant)
    print(f"{REPORT}: engine {data['docker_version'] or 'missing'}, compose {data['compose_version'] or 'missing'}, "
          f"GPU passthrough {'yes' if data['gpu_passthrough'] else 'no'}: {'pass' if data['passed'] else 'FAIL'}")
    for gap in data["missing"]:
        print(f"  {'required' if gap['required'] else 'optional'}: {gap['item']}: {gap['problem']}. Install: {gap['install']}")
    return 0 if data["passed"] else 1


def run(project: Project, args: argparse.Namespace) -> int:
    """Run one C2-C3 command; a DockerError prints what failed, the hint and the tool's last lines, exit 1."""
    from . import deploy, image

    variant = getattr(args, "variant", None) or str(project.answers.get("accelerator", "cpu"))
    try:
        if args.command == "docker-base":
            image.build_base(project, force=args.force, mirror=args.mirror, save=args.save)
        elif args.command == "wheelhouse":
            image.build_wheelhouse(project, variant, args.pip_python)
        elif args.command == "docker-build":
            try:
                image.build_image(project, variant, args.base_image)
            except DockerError as err:
                raise deploy.build_failed(project, variant, err) from None
        elif args.command == "container-check":
            log = image.container_check(project, variant, args.checkpoint)
            print(f"{image.LOG}: torch {log.get('torch_version')}, cuda_available {log.get('cuda_available')}, "
                  f"model_load {log['model_load']}, service_import {log['service_import']}, uid {log['uid']}: {log['result']}")
            for failure in log["failures"]:
                print(f"  FAIL {failure}")
            return 0 if log["result"] == "pass" else 1
        elif args.command == "deploy":
            if args.down:
                return deploy.down(project, variant)
            report = deploy.deploy(project, variant, args.checkpoint, args.port, args.requests, args.concurrency, args.timeout)
            for check in report["sla"]:
                print(f"  {check['metric']}: measured {check['measured']}, target {check['target']}: {check['verdict']}")
            print(f"{deploy.REPORT}: {'pass' if report['passed'] else 'FAIL'}; the service runs at {report['url']} "
                  "(stop it: nox -s deploy -- --down)")
            return 0 if report["passed"] else 1
    except DockerError as err:
        if err.output:
            print("\n".join(err.output.splitlines()[-25:]), file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
