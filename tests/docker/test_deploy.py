"""Stages C2-C3 without an engine: builder choice, percentiles, SLA verdicts, error-report numbering, README sections."""

from __future__ import annotations

import pytest

from validators.docker import deploy
from validators.docker import engine as docker_env
from validators.docker.engine import build_command
from validators.docker.image import base_spec
from validators.errors import DockerError
from validators.project import Project
from validators.readme import replace_section

from ..helpers import write_file


def runner(table: dict[tuple[str, ...], tuple[int, str]]):
    return lambda argv: table.get(tuple(argv), (127, ""))


def test_buildx_is_used_when_the_client_has_it():
    assert build_command(runner({("docker", "buildx", "version"): (0, "github.com/docker/buildx v0.17.1")})) == (
        ["docker", "buildx", "build", "--load"], {})


def test_an_older_client_later_on_path_builds_with_its_builtin_buildkit(monkeypatch):
    monkeypatch.setattr(docker_env, "docker_clients", lambda: ["/usr/local/bin/docker", "/usr/bin/docker"])
    table = {("/usr/local/bin/docker", "version", "--format", "{{.Client.Version}}"): (0, "28.2.2"),
             ("/usr/bin/docker", "version", "--format", "{{.Client.Version}}"): (0, "20.10.24+dfsg1")}
    assert build_command(runner(table)) == (["/usr/bin/docker", "build"], {"DOCKER_BUILDKIT": "1"})


def test_a_new_client_without_buildx_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(docker_env, "docker_clients", lambda: ["/usr/local/bin/docker"])
    table = {("/usr/local/bin/docker", "version", "--format", "{{.Client.Version}}"): (0, "28.2.2")}
    with pytest.raises(DockerError) as err:
        build_command(runner(table))
    assert str(err.value) == (
        "no docker client here can run a BuildKit build: Docker 23+ needs the buildx plugin (hint: install buildx "
        "(`docker-buildx-plugin` from Docker's apt repository, or the binary in ~/.docker/cli-plugins/docker-buildx))")


def test_base_images_come_from_the_one_table():
    assert base_spec("3.11") == {"codename": "bookworm", "label": "Debian 12", "mirror": "http://deb.debian.org/debian"}
    with pytest.raises(DockerError, match=r"^no air-gapped base image is known for Python 3\.9 \(hint: use --base-image"):
        base_spec("3.9")


def test_percentiles_interpolate_between_order_statistics():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert [deploy.percentile(values, q) for q in (50, 95, 99)] == [50.5, 95.05, 99.01]
    assert deploy.percentile([7.0], 99) == 7.0


def test_sla_verdicts_compare_each_stated_target(tmp_path):
    write_file(tmp_path / "docs/plan/requirements.md", "---\nsla:\n  latency_ms: 20\n  throughput_per_s: null\n---\n# r\n")
    load = {"latency_ms": {"p50": 9.0, "p95": 20.5, "p99": 30.0}, "throughput_per_s": 150.0}
    assert deploy.sla_checks(Project(tmp_path), load) == [
        {"metric": "latency p95 (ms)", "target": 20, "measured": 20.5, "verdict": "not met"},
        {"metric": "throughput (requests/s)", "target": None, "measured": 150.0, "verdict": "not stated"}]
    load["latency_ms"]["p95"] = 20.0
    assert deploy.sla_checks(Project(tmp_path), load)[0]["verdict"] == "met"


def test_error_reports_count_up_and_keep_the_earlier_ones(tmp_path):
    assert deploy.next_error_report(Project(tmp_path)).name == "docker_error_report_1.md"
    for name in ("docker_error_report_1.md", "docker_error_report_3.md", "docker_error_report_x.md"):
        (tmp_path / "reports").mkdir(exist_ok=True)
        (tmp_path / "reports" / name).write_text("kept")
    assert deploy.next_error_report(Project(tmp_path)).name == "docker_error_report_4.md"


@pytest.mark.parametrize(("usage", "mib"), [("283.1MiB / 23.4GiB", 283.1), ("1.5GiB / 23GiB", 1536.0), ("512KiB / 1GiB", 0.5)])
def test_container_memory_is_read_in_mib(monkeypatch, usage, mib):
    monkeypatch.setattr(deploy, "run_command", lambda argv: (0, usage))
    assert deploy.memory_mib("abc") == mib


def test_a_readme_section_is_rewritten_in_place_and_idempotently():
    text = "# P\n\nintro\n\n<!-- hephaestus:deploy-results:start -->\n\nold\n\n<!-- hephaestus:deploy-results:end -->\n\n## Next\n"
    once = replace_section(text, "deploy-results", "new figures")
    assert once == "# P\n\nintro\n\n<!-- hephaestus:deploy-results:start -->\n\nnew figures\n\n<!-- hephaestus:deploy-results:end -->\n\n## Next\n"
    assert replace_section(once, "deploy-results", "new figures") == once


def test_a_readme_without_the_markers_gets_the_section_appended():
    assert replace_section("# P\n", "deploy-results", "figures") == (
        "# P\n\n<!-- hephaestus:deploy-results:start -->\n\nfigures\n\n<!-- hephaestus:deploy-results:end -->\n")
