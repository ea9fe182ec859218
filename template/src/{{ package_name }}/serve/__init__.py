"""Inference service: `create_app(Settings(...))` in code, `app_from_env()` for uvicorn (`--factory`)."""

from fastapi import FastAPI

from .app import create_app
from .settings import Settings


def app_from_env() -> FastAPI:
    """The app configured by MODEL_CHECKPOINT, DEVICE, MAX_BATCH_SIZE and MAX_BODY_BYTES."""
    return create_app(Settings.from_env())


__all__ = ["Settings", "app_from_env", "create_app"]
