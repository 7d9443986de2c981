"""Errors raised by the real-time linkage engine (one root, so callers can catch the package's errors)."""


class EngineError(Exception):
    """Root of the engine's errors."""


class UnsupportedModelError(EngineError):
    """The model uses a comparison or blocking rule the engine cannot score exactly like Splink."""


class MasterNotLoadedError(EngineError):
    """`link` was called before a master was loaded."""
