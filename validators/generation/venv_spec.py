"""Gate A5: venv.md, the pinned requirement files, and the spec copies.

venv.md keeps its data in front matter (python_version, one entry per environment with its
requirement file and exact commands); this module checks it against the requirement files, the
answers and noxfile.py. The spec copies must be present, carry their required sections, and be
written for this project (they name it).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..artifacts import CLAUDE, SPECS, VENV_SPEC
from ..errors import GateError
from ..pins import ENVIRONMENTS, PIN
from ..project import Project

SPEC_COPIES = {
    CLAUDE.path: ["## Project", "## Rules", "## Commands", "## Do not"],
    f"{SPECS}/VENV_CONFIG.md": ["## Environments", "## Building", "## Offline and air-gapped", "## Pins"],
    f"{SPECS}/DEBUG_CODE.md": ["## Debug ladder", "## Common failures", "## Reporting a bug"],
    f"{SPECS}/DOCKER_CONFIG.md": ["## Images", "## Build rules", "## Runtime", "## Air-gapped builds"],
    f"{SPECS}/OMEGACONF_GUIDE.md": ["## Layout", "## Composition", "## Overrides", "## Adding a key"],
    f"{SPECS}/ML_ARCHITECTURE_GUIDE.md": ["## Layers", "## Data", "## Models", "## Training loop", "## Adding a model"],
}
MIN_LINES = 30


def rule_venv_md(project: Project) -> Iterator[GateError]:
    doc, errors = project.validated(VENV_SPEC.path, VENV_SPEC.schema)
    yield from errors
    if doc is None:
        return
    answered = str(project.answers.get("python_version", ""))
    if doc["python_version"] != answered:
        yield GateError(VENV_SPEC.path, "python_version", doc["python_version"], f"{answered} (.copier-answers.yml)",
                        "venv.md and the answers must agree; `copier update` re-renders venv.md")
    noxfile = project.read("noxfile.py") or ""
    if f'PYTHON = "{doc["python_version"]}"' not in noxfile:
        yield GateError(VENV_SPEC.path, "python_version", doc["python_version"], "the PYTHON of noxfile.py", "re-render with copier")
    for env, requirements in ENVIRONMENTS.items():
        entry = doc["environments"].get(env)
        if entry is None:
            yield GateError(VENV_SPEC.path, f"environments.{env}", None, f"an entry for {env}", f"see the template's {VENV_SPEC}")
            continue
        if entry["requirements"] != requirements:
            yield GateError(VENV_SPEC.path, f"environments.{env}.requirements", entry["requirements"], requirements, "")
        if not any(requirements in c for c in entry["commands"]):
            yield GateError(VENV_SPEC.path, f"environments.{env}.commands", entry["commands"],
                            f"commands that install {requirements}", "give the exact uv commands")


def rule_requirement_files(project: Project) -> Iterator[GateError]:
    """Every line pinned with ==; CPU wheels (+cpu) on the CPU side, CUDA wheels on the GPU side; same other pins."""
    pins = {}
    for env, name in ENVIRONMENTS.items():
        text = project.read(name)
        if text is None:
            yield GateError(name, "", None, "the file to exist", "it is rendered by the template")
            continue
        pins[name] = {}
        for n, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            m = PIN.match(stripped)
            if not m:
                yield GateError(name, f"line {n}", stripped, "name==version (every package pinned)", "pin the exact version")
                continue
            pins[name].setdefault(m.group(1).lower(), []).append((m.group(2), m.group(3) or ""))
        torch = pins[name].get("torch", [])
        linux = [v for v, marker in torch if "!=" not in marker]
        if env == "debug-cpu" and not any(v.endswith("+cpu") for v in linux):
            yield GateError(name, "torch", linux, "a +cpu build for Linux", "torch==<version>+cpu ; sys_platform == \"linux\"")
        if env == "debug-gpu" and any("+cpu" in v for v, _ in torch):
            yield GateError(name, "torch", [v for v, _ in torch], "a CUDA build (no +cpu)", "torch==<version>")
    if len(pins) == 2:
        cpu, gpu = ({k: v for k, v in p.items() if k != "torch"} for p in pins.values())
        for dist in sorted(set(cpu) ^ set(gpu) | {d for d in set(cpu) & set(gpu) if cpu[d] != gpu[d]}):
            yield GateError("requirements-gpu.txt", dist, gpu.get(dist), f"the same pin as requirements-cpu.txt ({cpu.get(dist)})",
                            "only torch differs between the two files")


def rule_spec_copies(project: Project) -> Iterator[GateError]:
    name = str(project.answers.get("project_name", ""))
    for path, headings in SPEC_COPIES.items():
        text = project.read(path)
        if text is None:
            yield GateError(path, "", None, "the spec copy to exist", "`copier update --trust` restores template-owned files")
            continue
        lines = text.splitlines()
        for heading in headings:
            if heading not in lines:
                yield GateError(path, f"sections.{heading.lstrip('# ')}", None, f"a '{heading}' section", "restore it from the template")
        body = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
        if len(body) < MIN_LINES:
            yield GateError(path, "body", len(body), f"at least {MIN_LINES} lines of guidance", "a spec copy is guidance, not a stub")
        if name not in text:
            yield GateError(path, "project", None, f"guidance written for this project (naming '{name}')", "re-render with copier")
