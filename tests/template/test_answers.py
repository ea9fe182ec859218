"""Bad copier answers fail with a message that names the field and says what is allowed."""

from __future__ import annotations

import re

import pytest

from ..helpers import render

BAD_ANSWERS = [
    ({"project_name": "my project"},
     "Validation error for question 'project_name': 'my project' contains a space: use '_' or '-' instead, e.g. 'my_project'"),
    ({"project_name": "a/b"},
     "Validation error for question 'project_name': 'a/b' contains a path separator: it names one folder, not a path"),
    ({"project_name": "a..b"},
     "Validation error for question 'project_name': 'a..b' contains '..': it names one folder inside the destination"),
    ({"project_name": "class"},
     "Validation error for question 'project_name': 'class' is a Python keyword and cannot name a package: try 'class_project'"),
    ({"project_name": "3d_seg"},
     "Validation error for question 'project_name': '3d_seg' starts with a digit: Python packages must start with a letter, e.g. 'p3d_seg'"),
    ({"project_name": "Defects!"},
     "Validation error for question 'project_name': 'Defects!' is not a slug: use lowercase letters, digits, '_' and '-', starting with a letter"),
    ({"requirement": "   \n "},
     "Validation error for question 'requirement': must not be empty: describe the research idea in a sentence or two (English or Chinese)"),
    ({"task_family": "tabular_regression", "model": "resnet"},
     "Invalid choice for 'model': 'resnet' is not in ['mlp', 'tabular_resnet', 'ft_transformer']"),
    ({"task_family": "speech"},
     "Invalid choice for 'task_family': 'speech' is not in ['image_classification', 'text_classification', "
     "'tabular_classification', 'tabular_regression', 'time_series_forecasting']"),
]


@pytest.mark.parametrize(("data", "message"), BAD_ANSWERS, ids=[str(d) for d, _ in BAD_ANSWERS])
def test_bad_answer_is_rejected_with_exact_message(tmp_path, data, message):
    dst = tmp_path / "out"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        render(dst, **data)
    assert not (dst / "src").exists()


def test_dashed_slug_becomes_an_underscored_package(tmp_path):
    root = render(tmp_path / "pcb-defects", project_name="pcb-defects", task_family="tabular_classification")
    assert (root / "src/pcb_defects/train.py").is_file()
