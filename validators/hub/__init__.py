"""Fetching from the Hugging Face hub, where there is internet: pretrained weights into weights/<model>/ and the
catalog's full dataset into data/full/, each with a manifest the core's weights.py reads (the cluster wing checks it
where there is no internet). Stdlib only on import: huggingface_hub and pyarrow are imported by the commands that
use them, in their own process (the project's package sets HF_HUB_OFFLINE=1 and is never imported here)."""

from __future__ import annotations

PARQUET_READER = "pyarrow==26.0.1"  # `nox -s fetch_data` adds it for that one command (uv run --with); no venv carries it
