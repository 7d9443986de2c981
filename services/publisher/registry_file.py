"""Read and write the subscription registry file (JSON, validated by `contracts.subscriptions`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from contracts.subscriptions import SubscriptionRegistry


class RegistryFileError(ValueError):
    """The registry file cannot be read or is invalid; the message says where."""


def load_registry(path: Path) -> SubscriptionRegistry:
    """The registry in `path`; an empty registry (version 0) when the file does not exist yet."""
    if not path.exists():
        return SubscriptionRegistry()
    try:
        return SubscriptionRegistry.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'registry'}: {e['msg']}" for e in exc.errors())
        raise RegistryFileError(f"{path} is not a valid subscription registry: {problems}") from None
    except OSError as exc:
        raise RegistryFileError(f"cannot read {path}: {exc}") from exc


def save_registry(path: Path, registry: SubscriptionRegistry) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a registry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = registry.model_dump_json(indent=2, exclude_defaults=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
