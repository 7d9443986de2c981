"""Whole-column helpers for the fast preparation paths: per-value Python work only once per DISTINCT value.

A million-row master holds far fewer distinct names, birth dates, villages or sex codes than rows, so
the per-value reference functions (`normalise_name`, `parse_date`, ...) are applied to the distinct
values of a column (Arrow's hash-based `dictionary_encode`) and the results mapped back with `take`.
Because every row gets exactly the result of the reference function for its own value, the fast paths
are equal to the row-by-row ones by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# Column types whose distinct values are exactly Python-equal values (floats are not: -0.0 == 0.0, NaN).
_DISTINCT_SAFE = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_null,
    pa.types.is_date32,
    pa.types.is_integer,
)


def distinct_safe(column: pa.ChunkedArray | pa.Array) -> bool:
    """True when `map_distinct` may be used on this column's type."""
    return any(test(column.type) for test in _DISTINCT_SAFE)


def as_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array; the null type becomes all-null strings (both read back as None)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_null(array.type):
        array = array.cast(pa.string())
    return array


def map_distinct(
    column: pa.ChunkedArray | pa.Array, fn: Callable[[Any], Sequence[Any]], types: Sequence[pa.DataType]
) -> list[pa.Array]:
    """`fn(value)` for every row, computed once per distinct value: one output array per entry of `types`.

    `fn` returns a tuple with one item per output; a null row gets `fn(None)`.
    """
    array = as_array(column)
    encoded = pc.dictionary_encode(array)
    results = [fn(value) for value in encoded.dictionary.to_pylist()]
    on_null = fn(None) if array.null_count else None
    outputs: list[pa.Array] = []
    for i, out_type in enumerate(types):
        out = pa.array([r[i] for r in results], type=out_type).take(encoded.indices)
        if on_null is not None and on_null[i] is not None:
            out = pc.fill_null(out, pa.scalar(on_null[i], out_type))
        outputs.append(out)
    return outputs


def with_fallback(
    column: pa.Array, plain: pa.Array, fast: pa.Array, fn: Callable[[Any], Any], out_type: pa.DataType
) -> pa.Array:
    """`fast` where `plain` is true; elsewhere (nulls and unusual values) `fn` per distinct value."""
    rest = pc.invert(pc.fill_null(plain, False))
    if not pc.any(rest).as_py():
        return fast
    (slow,) = map_distinct(column.filter(rest), lambda value: (fn(value),), [out_type])
    replaced: pa.Array = pc.replace_with_mask(fast, rest, slow)
    return replaced
