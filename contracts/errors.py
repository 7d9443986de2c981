"""Validation error messages that are safe to show: they never repeat a submitted value.

Most pydantic messages name only the rule ("Input should be 1, 2 or 3"), but a few quote the input: the
discriminated union names the submitted tag ("Input tag '9' found using 'schema_version' ..."), and the
length errors of a list end with the submitted length. Those are rewritten from the rule alone, so
answers, dead letters and logs carry no value that came from outside.
"""

from __future__ import annotations

from pydantic_core import ErrorDetails


def public_message(error: ErrorDetails) -> str:
    """The message of one pydantic error (from `errors(include_context=True)`), without input values."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "union_tag_invalid":
        discriminator = str(ctx.get("discriminator", "the tag")).strip("'")
        return f"{discriminator} must be one of: {ctx.get('expected_tags', '')}"
    if kind in ("too_long", "too_short") and "actual_length" in ctx:
        what = ctx.get("field_type", "List")
        if kind == "too_long":
            return f"{what} should have at most {ctx.get('max_length')} items"
        least = ctx.get("min_length")
        return f"{what} should have at least {least} item{'' if least == 1 else 's'}"
    return error["msg"]
