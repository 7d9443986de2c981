"""Put the FamilySubmission contract into the gateway's OpenAPI document.

The submit endpoint reads its body itself (to bound its size before parsing), so FastAPI cannot infer
the request schema; it is taken from the contract's TypeAdapter instead, with the contract's nested
models placed under `components/schemas` where OpenAPI tools look for them.

The document is kept clean under Redocly's `recommended` rules (tests/unit/test_gateway_openapi_lint.py):
a relative server, a license statement, every operation with a security requirement (`[]` = public, for
the probes), error answers documented as `application/problem+json` (RFC 9457), and a `4XX` answer on
operations that name no client error of their own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from contracts.submission import FAMILY_SUBMISSION_ADAPTER

_REF_TEMPLATE = "#/components/schemas/{model}"
_PROBLEM_JSON = "application/problem+json"
#: Relative to where the document is served, so the one document fits every deployment.
SERVERS = [{"url": "/", "description": "this gateway (paths are relative to where /openapi.json is served)"}]
LICENSE = {"name": "All rights reserved (no licence is granted)", "identifier": "LicenseRef-proprietary"}


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
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=SERVERS,
                license_info=LICENSE,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _submission_schema()[1].items():
                components.setdefault(name, definition)
            _document_errors_and_security(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_errors_and_security(document: dict[str, Any]) -> None:
    # FastAPI writes every response as application/json and leaves unsecured operations without a
    # `security` entry; say what the gateway really answers and that the probes are public on purpose.
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("security", [])
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[_PROBLEM_JSON] = content.pop("application/json")
            if not any(status.startswith("4") for status in responses):
                responses["4XX"] = {
                    "description": "a client error (e.g. a wrong method), as problem+json",
                    "content": {_PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
