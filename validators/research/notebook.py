"""B2: execute scripts/explore_mini.ipynb headless and check that it produced its figures."""

from __future__ import annotations

from collections.abc import Iterator

from ..artifacts import NOTEBOOK_DISTRIBUTION, NOTEBOOK_FIGURES, NOTEBOOK_RUN
from ..errors import GateError, HephaestusError
from ..project import Project

NOTEBOOK = "scripts/explore_mini.ipynb"
EXECUTED = NOTEBOOK_RUN.path
FIGURES = (NOTEBOOK_FIGURES.path, NOTEBOOK_DISTRIBUTION.path)


def execute(project: Project, timeout_s: int = 300) -> list[str]:
    """Run every cell with a fresh kernel from scripts/; save the executed copy under reports/. Returns the figures."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(project.root / NOTEBOOK, as_version=4)
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(project.root / "scripts")}}).execute()
    except CellExecutionError as err:
        cell = next((i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        raise HephaestusError(f"{NOTEBOOK}: cell {cell} raised {err.ename}: {err.evalue} "
                              "(hint: open the notebook, fix the cell, run `nox -s env_check` again)") from None
    project.path(EXECUTED).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, project.root / EXECUTED)
    return [f for f in FIGURES if (project.root / f).is_file()]


def rule_notebook(project: Project) -> Iterator[GateError]:
    if not (project.root / NOTEBOOK).is_file():
        yield GateError(NOTEBOOK, "", None, "the notebook to exist", "`copier update --trust` restores it")
        return
    for figure in FIGURES:
        path = project.root / figure
        if not path.is_file() or path.stat().st_size < 1000:
            yield GateError(figure, "", None, "a figure written by the executed notebook", "run `nox -s env_check`")
