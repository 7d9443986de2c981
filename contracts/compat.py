"""Schema compatibility in the sense of Confluent's Schema Registry modes, for our JSON Schemas.

`accepts_all(reader, writer)` answers: does every document valid under `writer` stay valid under `reader`?
It returns the reasons it cannot show that (empty = compatible). The check is conservative: it knows the
keywords pydantic emits (type, enum/const, anyOf/oneOf/allOf, $ref to $defs, properties, required,
additionalProperties, items, string/number/array bounds, pattern, format) and reports anything else it
would have to understand as a break, so a new keyword is looked at by a person rather than waved through.

The modes (docs/contracts.md):
- BACKWARD: a consumer on the new schema reads data written with the old one: accepts_all(new, old).
- FORWARD: a consumer still on the old schema reads data written with the new one: accepts_all(old, new).
- FULL: both. "Transitive" = against every earlier released version, not only the last one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

_ANNOTATIONS = {
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$defs",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "discriminator",
}
# `discriminator` (OpenAPI) only names the tag the oneOf branches already fix with `const`.
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")
_KNOWN = (
    _ANNOTATIONS
    | set(_LOWER)
    | set(_UPPER)
    | {
        "type",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "pattern",
        "format",
        "uniqueItems",
    }
)
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


class Mode(StrEnum):
    """Confluent's compatibility modes (all checked transitively here)."""

    BACKWARD = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD_TRANSITIVE"
    FULL = "FULL_TRANSITIVE"


def breaks(new: dict[str, Any], old: dict[str, Any], mode: Mode, *, declared_only: bool = False) -> list[str]:
    """Why `new` is not compatible with `old` under `mode` (empty when it is).

    `declared_only`: judge the data by the fields the writer's schema declares, and let readers ignore
    the rest, whatever `additionalProperties` the files carry. That is our policy (docs/contracts.md):
    our output models never emit an undeclared field and consumers ignore unknown ones; our input
    models ignore unknown fields, and a field a producer sends without it being in the contract is
    outside the contract. It is what lets an optional field be added within a version.
    """

    def writer(schema: dict[str, Any]) -> dict[str, Any]:
        return _with_extra(schema, False) if declared_only else schema

    def reader(schema: dict[str, Any]) -> dict[str, Any]:
        return _with_extra(schema, True) if declared_only else schema

    found: list[str] = []
    if mode in (Mode.BACKWARD, Mode.FULL):
        found += [f"old data rejected by new schema: {r}" for r in accepts_all(reader(new), writer(old))]
    if mode in (Mode.FORWARD, Mode.FULL):
        found += [f"new data rejected by old schema: {r}" for r in accepts_all(reader(old), writer(new))]
    return found


def _with_extra(node: Any, allowed: bool) -> Any:
    # Every object schema with declared properties made closed (allowed=False) or open (allowed=True).
    if isinstance(node, list):
        return [_with_extra(item, allowed) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: (v if k in ("const", "enum", "default", "examples") else _with_extra(v, allowed))
        for k, v in node.items()
        if not (k == "additionalProperties" and v is False)
    }
    if "properties" in out:
        out["properties"] = {name: _with_extra(sub, allowed) for name, sub in node["properties"].items()}
        if not allowed and "additionalProperties" not in out:
            out["additionalProperties"] = False
    return out


def accepts_all(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Reasons some document valid under `writer` may be invalid under `reader` (empty = none found)."""
    return _Check(reader, writer).subset(writer, reader, "$")


class _Check:
    def __init__(self, reader_root: dict[str, Any], writer_root: dict[str, Any]) -> None:
        self.roots = {"r": reader_root, "w": writer_root}

    def _resolve(self, node: Any, side: str) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/$defs/") or seen > 50:
                return {"$unsupported": ref}
            node = self.roots[side]["$defs"][ref.removeprefix("#/$defs/")]
            seen += 1
        return node

    def subset(self, w: Any, r: Any, at: str) -> list[str]:
        """Reasons a value valid under writer node `w` may fail reader node `r`."""
        w, r = self._resolve(w, "w"), self._resolve(r, "r")
        if r is True or r == {} or (isinstance(r, dict) and set(r) <= _ANNOTATIONS):
            return []
        if w is False:
            return []
        if r is False:
            return [f"{at}: the reader forbids a value the writer allows"]
        if w is True or w == {}:
            return [f"{at}: the writer allows any value, the reader constrains it"]
        for side, node in (("writer", w), ("reader", r)):
            unknown = sorted(set(node) - _KNOWN)
            if unknown:
                return [f"{at}: {side} uses keywords this check does not know: {unknown}"]
        for key in ("anyOf", "oneOf"):
            if key in w:
                rest = {k: v for k, v in w.items() if k != key}
                return [e for branch in w[key] for e in self.subset({**rest, **branch}, r, at)]
        if "allOf" in w and len(w["allOf"]) == 1:
            return self.subset({**{k: v for k, v in w.items() if k != "allOf"}, **w["allOf"][0]}, r, at)
        if "allOf" in r:
            rest = {k: v for k, v in r.items() if k != "allOf"}
            return [e for part in [rest, *r["allOf"]] for e in self.subset(w, part, at)]
        for key in ("anyOf", "oneOf"):
            if key in r:
                rest = {k: v for k, v in r.items() if k != key}
                tries = [self.subset(w, {**rest, **branch}, at) for branch in r[key]]
                if any(not t for t in tries):
                    return []
                closest = min(tries, key=len)  # the branch meant for these values, most likely
                return [f"{at}: no branch of the reader's {key} accepts the writer's values", *closest]
        return self._leaf(w, r, at)

    def _leaf(self, w: dict[str, Any], r: dict[str, Any], at: str) -> list[str]:
        values = _values(w)
        if values is not None:
            allowed = _values(r)
            dropped = [v for v in values if allowed is not None and v not in allowed]
            if dropped:
                return [f"{at}: the reader drops allowed values {dropped}"]
            r_types = _types(r)
            if r_types is not None and not all(_json_type(v) in r_types for v in values):
                return [f"{at}: a value the writer allows has a type the reader refuses"]
            return []
        if _values(r) is not None:
            return [f"{at}: the reader limits the values to an enum, the writer does not"]
        w_types, r_types = _types(w), _types(r)
        if r_types is not None and (w_types is None or not w_types <= r_types):
            return [f"{at}: types {sorted(w_types or ['any'])} not within {sorted(r_types)}"]
        found = _bounds(w, r, at)
        for key in ("pattern", "format"):
            if key in r and w.get(key) != r[key]:
                found.append(f"{at}: the reader requires {key} {r[key]!r}")
        if "uniqueItems" in r and r["uniqueItems"] and not w.get("uniqueItems"):
            found.append(f"{at}: the reader requires unique items")
        if "items" in r:
            found += self.subset(w.get("items", True), r["items"], f"{at}[]")
        if w_types is None or "object" in w_types:
            found += self._object(w, r, at)
        return found

    def _object(self, w: dict[str, Any], r: dict[str, Any], at: str) -> list[str]:
        found = [
            f"{at}: the reader requires {name!r}, the writer may omit it"
            for name in sorted(set(r.get("required", ())) - set(w.get("required", ())))
        ]
        w_props, r_props = w.get("properties", {}), r.get("properties", {})
        w_extra, r_extra = w.get("additionalProperties", True), r.get("additionalProperties", True)
        for name in sorted(set(w_props) | set(r_props)):
            where = f"{at}.{name}"
            if name in w_props and name in r_props:
                found += self.subset(w_props[name], r_props[name], where)
            elif name in w_props:  # a field only the writer knows
                if r_extra is False:
                    found.append(f"{where}: the writer adds a field the reader's closed schema forbids")
                else:
                    found += self.subset(w_props[name], r_extra, where)
            else:  # a field only the reader knows: the writer could send it as an extra
                found += self.subset(w_extra, r_props[name], where) if w_extra is not False else []
        if w_extra is not False and r_extra is not True:
            found += self.subset(w_extra, r_extra, f"{at}.*")
        return found


def _values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    return list(node["enum"]) if "enum" in node else None


def _types(node: dict[str, Any]) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    types = {t} if isinstance(t, str) else set(t)
    return types | {"integer"} if "number" in types else types


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), "unknown")


def _bounds(w: dict[str, Any], r: dict[str, Any], at: str) -> list[str]:
    found = []
    for key in _LOWER:
        if key in r and (key not in w or w[key] < r[key]):
            found.append(f"{at}: the reader raises {key} to {r[key]}")
    for key in _UPPER:
        if key in r and (key not in w or w[key] > r[key]):
            found.append(f"{at}: the reader lowers {key} to {r[key]}")
    return found
