"""litellm conventions shared by the planner hook and the project's bugfix loop.

The model is an answer (`llm_model`) unless it is 'offline', else `$HEPHAESTUS_LLM_MODEL`;
keys come from the provider's environment variables only (litellm reads them there) and every
key value that could appear in an error is redacted before it is printed or recorded. Each call
has a timeout (`$HEPHAESTUS_LLM_TIMEOUT`, 60 s). litellm is optional: importing it through
`require_litellm` gives one DependencyError that says what to install.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import DependencyError

TIMEOUT_S = float(os.environ.get("HEPHAESTUS_LLM_TIMEOUT", "60"))
SECRET_VARS = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$")


def resolve_model(answer: str | None) -> str | None:
    """The litellm model to use: the answer unless 'offline', else $HEPHAESTUS_LLM_MODEL, else None."""
    if answer and answer.strip() and answer.strip() != "offline":
        return answer.strip()
    env = os.environ.get("HEPHAESTUS_LLM_MODEL", "").strip()
    return env if env and env != "offline" else None


def redact(text: str) -> str:
    """Replace the value of every *_KEY / *_TOKEN / *_SECRET / *_PASSWORD environment variable."""
    for name, value in os.environ.items():
        if SECRET_VARS.search(name) and len(value) >= 4:
            text = text.replace(value, f"<{name}>")
    return text


def require_litellm(purpose: str, install: str = "pip install litellm") -> Any:
    """The litellm module, imported without network access; DependencyError when it is missing."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    try:
        import litellm
    except ImportError as err:
        raise DependencyError("litellm", purpose, install) from err
    litellm.suppress_debug_info = True  # no "Give Feedback" banners in the output
    return litellm
