"""Put the FamilySubmission contract into the gateway's OpenAPI document.

The submit endpoint reads its body itself (to bound its size before parsing), so FastAPI cannot infer
the request schema; it is taken from the contract's TypeAdapter instead, with the contract's nested
models placed under `components/schemas` where OpenAPI tools look for them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from contracts.submission import FAMILY_SUBMISSION_ADAPTER

_REF_TEMPLATE = "#/components/schemas/{model}"


@cache
def _submission_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = FAMILY_SUBMISSION_ADAPTER.json_schema(ref_template=_REF_TEMPLATE, mode="validation")
    defs = schema.pop("$defs", {})
    return schema, defs


def submission_request_body() -> dict[str, Any]:
    """The OpenAPI `requestBody` object of `POST /v1/submissions`."""
    schema, _ = _submission_schema()
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (served at /openapi.json) include the contract's model definitions."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _submission_schema()[1].items():
                components.setdefault(name, definition)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
