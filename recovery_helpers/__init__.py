"""Partial recovery of corrupted DynamoDB items from point-in-time recovery."""

__version__ = "0.1.0"

from .notebook_errors import install as _install_error_display

# In a notebook kernel, errors a user can act on show as their message and what to do (not a traceback).
_install_error_display()
