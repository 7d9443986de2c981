"""The linker's exception root."""

from __future__ import annotations


class LinkerConfigError(RuntimeError):
    """The settings do not say which engine to run, or its files are missing (the message has the remedy)."""
