"""Corrections to moto, installed once per process when a Sandbox starts."""

from __future__ import annotations

from typing import Any

from .clock import Clock
from .settings import SandboxSettings

_installed = False


def install(settings: SandboxSettings, clock: Clock) -> None:
    global _installed
    if _installed:
        return
    _installed = True


def set_enforcement(on: bool) -> None:
    """Switch moto's IAM enforcement on (every request needs valid sandbox credentials) or off."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    ActionAuthenticatorMixin.request_count = 0
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")


def reset_state() -> None:
    """Forget sandbox-side state (PITR history, exports) kept beside moto's backends."""
