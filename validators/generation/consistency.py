"""Static consistency checks of a generated project (stage A4), each yielding GateErrors.

- README: every `nox -s` session exists in noxfile.py; every `python scripts/...` exists; every
  command line of a fenced block parses; `group=choice` and dotted `key=value` overrides name real
  config groups, files and keys; every file named in backticks exists (runtime outputs excepted).
- Imports: every third-party module imported under src/ and scripts/ is pinned in both
  requirement files.
- Config keys: every `cfg.a.b` attribute chain in the code names a key of the configs/ tree (or
  a field of a `*Config` dataclass).
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from collections.abc import Iterator
from typing import Any

import yaml

from ..artifacts import README, RUNTIME_PATHS
from ..errors import GateError
from ..pins import REQUIREMENT_FILES, distribution
from ..project import Project

CFG_NAMES = {"cfg", "config", "model_cfg", "data_cfg"}
NOT_KEYS = {"get", "items", "keys", "values", "pop", "copy", "setdefault", "update"}


def nox_sessions(project: Project) -> list[str]:
    tree = ast.parse((project.root / "noxfile.py").read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Attribute) and target.attr == "session":
                    name = next((k.value.value for k in getattr(dec, "keywords", []) if k.arg == "name"
                                 and isinstance(k.value, ast.Constant)), node.name)
                    names.append(name)
    return names


def config_tree(project: Project) -> dict[str, Any]:
    """{'seed': ..., 'data': {...}, 'model': {...union of model files...}, ...} from configs/."""
    root = project.root / "configs"
    tree: dict[str, Any] = {k: v for k, v in (yaml.safe_load((root / "train.yaml").read_text()) or {}).items() if k != "defaults"}
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        merged: dict[str, Any] = {}
        for path in sorted(group.glob("*.yaml")):
            merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        tree[group.name] = merged
    return tree


def key_paths(tree: dict[str, Any]) -> set[tuple[str, ...]]:
    """Every downward chain of keys, starting at any node (so `batch_size` and `data.batch_size`)."""
    chains: set[tuple[str, ...]] = set()

    def walk(node: dict[str, Any], prefixes: list[tuple[str, ...]]) -> None:
        for key, value in node.items():
            extended = [(*p, key) for p in prefixes] + [(key,)]
            chains.update(extended)
            if isinstance(value, dict):
                walk(value, extended)

    walk(tree, [])
    return chains


def dataclass_fields(project: Project) -> set[str]:
    fields = set()
    for path in project.python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Config"):
                fields.update(s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name))
    return fields


def _chain(node: ast.Attribute) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in CFG_NAMES:
        return parts[::-1]
    if parts and parts[-1] == "cfg" and isinstance(node, ast.Name) and node.id == "self":
        return parts[::-1][1:]
    return None


def rule_config_keys(project: Project) -> Iterator[GateError]:
    import difflib

    known = key_paths(config_tree(project))
    singles = dataclass_fields(project) | {c[-1] for c in known}
    for path in project.python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or isinstance(parents.get(node), ast.Attribute):
                continue  # only outermost attribute chains
            chain = _chain(node)
            if isinstance(parents.get(node), ast.Call) and parents[node].func is node and chain:
                chain = chain[:-1]
            chain = [c for c in (chain or []) if not c.startswith("__")]
            if not chain or chain[-1] in NOT_KEYS:
                continue
            if tuple(chain) in known or (len(chain) == 1 and chain[0] in singles):
                continue
            near = difflib.get_close_matches(chain[-1], sorted(singles), n=1)
            yield GateError(path.relative_to(project.root).as_posix(), f"line {node.lineno}", ".".join(chain),
                            "a key of the config schema (configs/ and the *Config dataclasses)",
                            f"did you mean '{near[0]}'?" if near else "add the key to the schema and the YAML, with a comment")


def declared(project: Project) -> dict[str, set[str]]:
    out = {}
    for name in REQUIREMENT_FILES:
        text = project.read(name) or ""
        out[name] = {re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
                     for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))}
    return out


def rule_imports(project: Project) -> Iterator[GateError]:
    pinned = declared(project)
    local = {project.package, "validators"}
    for path in project.python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local or top == "__future__":
                    continue
                dist = distribution(top)
                missing = [f for f, dists in pinned.items() if dist not in dists]
                if missing:
                    yield GateError(path.relative_to(project.root).as_posix(), f"imports.{top}", top,
                                    f"'{dist}' pinned in {' and '.join(missing)}",
                                    f"add {dist}==<version> to both requirement files and re-run `nox -s setup`")


def _blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.DOTALL)


def rule_readme(project: Project) -> Iterator[GateError]:
    text = project.read(README.path)
    if text is None:
        yield GateError(README.path, "", None, "the file to exist", "it is generated by the template")
        return
    sessions = nox_sessions(project)
    for m in re.finditer(r"nox -s ((?:[\w-]+)(?:[ ,]+(?!-)[\w-]+)*)", text):
        for name in re.split(r"[ ,]+", m.group(1)):
            if name and name not in sessions:
                yield GateError(README.path, f"sessions.{name}", name, f"a session of noxfile.py ({', '.join(sessions)})",
                                "fix the README or add the session")
    tree = config_tree(project)
    known = key_paths(tree)
    for block in _blocks(text):
        for line in block.splitlines():
            command = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if not command:
                continue
            try:
                argv = shlex.split(command)
            except ValueError as err:
                yield GateError(README.path, "commands", command, "a command line that parses", str(err))
                continue
            yield from _check_command(project, argv, tree, known)
    for m in re.finditer(r"`([\w.][\w./-]*\.(?:py|yaml|yml|md|txt|toml|csv|json|ipynb)|[\w.][\w./-]*/)`", text):
        path = m.group(1)
        if not path.startswith(RUNTIME_PATHS) and not (project.root / path).exists():
            yield GateError(README.path, f"files.{path}", path, "a file or folder of the project", "fix the name in the README")


def _check_command(project: Project, argv: list[str], tree: dict[str, Any], known: set) -> Iterator[GateError]:
    if len(argv) >= 2 and argv[0] == "python" and argv[1].startswith("scripts/"):
        if not (project.root / argv[1]).is_file():
            yield GateError(README.path, f"commands.{argv[1]}", " ".join(argv), f"{argv[1]} to exist", "fix the README")
            return
        if argv[1] != "scripts/train.py":
            return
        for token in argv[2:]:
            if token.startswith("-") or "=" not in token or "<" in token:
                continue
            key, _, value = token.partition("=")
            group_dir = project.root / "configs" / key
            if group_dir.is_dir():
                if not (group_dir / f"{value}.yaml").is_file():
                    yield GateError(README.path, f"commands.{key}", token, f"a file configs/{key}/{value}.yaml",
                                    f"choices: {', '.join(sorted(p.stem for p in group_dir.glob('*.yaml')))}")
            elif tuple(key.split(".")) not in known:
                yield GateError(README.path, f"commands.{key}", token, "an override of an existing config key",
                                "see configs/ for the keys")
