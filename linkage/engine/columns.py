"""Dictionary-encoded master columns: every value becomes a small integer code.

Null, exact and term-frequency levels then reduce to integer compares, and string similarities are
computed on the vocabulary strings of the codes. Codes follow Splink's null semantics:
`NULL_CODE` (-1) is SQL NULL on either side; a query value the master has never seen gets
`UNSEEN_CODE` (-2), which is not null but equals no master value.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

NULL_CODE = -1
UNSEEN_CODE = -2

Codes = npt.NDArray[np.int32]


class Frequencies(Protocol):
    """Term-frequency counts kept outside the engine (a sharded master's global counts): how many
    master rows hold each value (by `linkage.engine.keys.value_hashes`), and how many hold any."""

    def count(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Rows holding each value (0 for a value no live row holds)."""
        ...

    @property
    def non_null(self) -> int:
        """Rows with a non-null value."""
        ...


def as_number(value: object) -> float:
    """Numeric view of a value for absolute-difference levels (dates as day numbers)."""
    if value is None:
        return float("nan")
    if isinstance(value, dt.datetime):
        return value.timestamp() / 86400.0
    if isinstance(value, dt.date):
        return float(value.toordinal())
    if isinstance(value, (int, float)):
        return float(value)
    return float(str(value))


def token_mask(value: object) -> int:
    """A 64-bit signature of a string's space-separated tokens (one bit per token, by CRC32): if the
    tokens of `a` are all among those of `b`, then `token_mask(a) & ~token_mask(b) == 0`. Only a filter:
    the reverse does not hold, so candidates are checked on the tokens themselves. 0 for None."""
    if value is None:
        return 0
    mask = 0
    for token in str(value).split(" "):
        mask |= 1 << (zlib.crc32(token.encode("utf-8")) & 63)
    return mask


def token_masks(values: Sequence[object]) -> npt.NDArray[np.uint64]:
    """`token_mask` of each value."""
    return np.fromiter((token_mask(v) for v in values), dtype=np.uint64, count=len(values))


def char_matrix(values: Sequence[object], width: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """Strings as a (n, width) matrix of code points (zero padded) and their lengths (-1 for None or
    a string longer than width)."""
    strings = ["" if v is None else str(v) for v in values]
    lengths = np.array([len(t) if v is not None else -1 for t, v in zip(strings, values, strict=True)])
    lengths[lengths > width] = -1
    clipped = [t if len(t) <= width else "" for t in strings]
    matrix = np.array(clipped, dtype=f"<U{max(width, 1)}").view(np.uint32).reshape(len(strings), max(width, 1))
    return matrix, lengths.astype(np.int64)


class Growing:
    """An array appended to at its end, kept in a buffer grown by a quarter at a time (appends cost
    O(appended) amortised, not a copy of the whole array: a shard appends fetched master rows to
    its columns' derived arrays at every batch). `view` is the part in use."""

    def __init__(self, first: npt.NDArray[Any]) -> None:
        self._buffer = first
        self._size = len(first)

    def __len__(self) -> int:
        return self._size

    @property
    def view(self) -> npt.NDArray[Any]:
        return self._buffer[: self._size]

    def append(self, more: npt.NDArray[Any]) -> None:
        end = self._size + len(more)
        if end > len(self._buffer):
            capacity = max(end, len(self._buffer) + len(self._buffer) // 4 + 1024)
            grown = np.empty((capacity, *self._buffer.shape[1:]), dtype=self._buffer.dtype)
            grown[: self._size] = self._buffer[: self._size]
            self._buffer = grown
        self._buffer[self._size : end] = more
        self._size = end


class EncodedColumn:
    """One master column as int32 codes into a growable vocabulary (upserts append, never rebuild)."""

    def __init__(self, name: str, values: pa.Array | pa.ChunkedArray) -> None:
        self.name = name
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        encoded = pc.dictionary_encode(values)
        self._vocab: list[object] = encoded.dictionary.to_pylist()
        self._index: dict[object, int] = {value: code for code, value in enumerate(self._vocab)}
        indices = encoded.indices.fill_null(NULL_CODE)
        codes = np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int32)
        self._codes: Codes = codes
        self._size = len(codes)
        self._arrow_strings: pa.LargeStringArray | None = None
        self._numbers: Growing | None = None
        self._token_masks: Growing | None = None
        self._chars: tuple[Growing, Growing] | None = None  # code-point matrix and lengths
        self._chars_unsupported_at = -1
        self._counts: npt.NDArray[np.int64] = np.bincount(codes[codes >= 0], minlength=len(self._vocab))
        self._non_null = int((codes >= 0).sum())
        self._type = encoded.dictionary.type
        self._frequencies: Frequencies | None = None
        self._vocab_hashes: npt.NDArray[np.uint64] = np.empty(0, dtype=np.uint64)

    def count_globally(self, frequencies: Frequencies) -> None:
        """Take term frequencies from `frequencies` (the whole master's) instead of the rows held here:
        a shard then scores a pair exactly as an engine holding the whole master does."""
        self._frequencies = frequencies

    @property
    def codes(self) -> Codes:
        """Codes of the master rows (a view; row ids index it)."""
        return self._codes[: self._size]

    @property
    def vocabulary_size(self) -> int:
        """Number of distinct non-null values seen in the master (ever, including removed rows)."""
        return len(self._vocab)

    def value(self, code: int) -> object:
        """The value behind a code (None for null)."""
        return None if code < 0 else self._vocab[code]

    def share_strings(self) -> None:
        """Build the Arrow copy of the vocabulary now (before any fork), for `strings_of`."""
        self.strings_of(np.empty(0, dtype=np.int32))

    def strings_of(self, codes: Codes) -> list[str]:
        """The vocabulary strings of (non-null) codes, as fresh Python strings.

        They are taken from an Arrow copy of the vocabulary, not from the Python objects: a forked
        worker that touched the shared Python strings would write their reference counts and so copy
        their memory pages; Arrow buffers are only read."""
        base = self._arrow_strings
        if base is None:
            base = pa.array([str(v) for v in self._vocab], type=pa.large_string())
            self._arrow_strings = base
        if len(base) == len(self._vocab):
            taken: list[str] = base.take(pa.array(codes, type=pa.int32())).to_pylist()
            return taken
        # values added by upserts after the Arrow copy was made come from the Python list
        vocab, size = self._vocab, len(base)
        old = codes < size
        out: list[str] = [""] * len(codes)
        old_pos = np.flatnonzero(old)
        for pos, text in zip(old_pos.tolist(), base.take(pa.array(codes[old_pos])).to_pylist(), strict=True):
            out[pos] = text
        for pos in np.flatnonzero(~old).tolist():
            out[pos] = str(vocab[int(codes[pos])])
        return out

    def _per_value(self, grown: Growing | None, compute: Callable[[list[Any]], npt.NDArray[Any]]) -> Growing:
        """`grown` (an array with an entry per vocabulary value) brought up to the vocabulary: `compute`
        runs on the values added since only (appends grow it)."""
        done = 0 if grown is None else len(grown)
        if grown is not None and done == len(self._vocab):
            return grown
        extra = compute(self._vocab[done:])
        if grown is None:
            return Growing(extra)
        grown.append(extra)
        return grown

    def numbers(self) -> npt.NDArray[np.float64]:
        """Vocabulary as float64 (NaN where not numeric), for absolute-difference levels."""
        self._numbers = self._per_value(
            self._numbers, lambda values: np.array([as_number(v) for v in values], dtype=np.float64)
        )
        numbers: npt.NDArray[np.float64] = self._numbers.view
        return numbers

    def token_masks(self) -> npt.NDArray[np.uint64]:
        """Vocabulary as token signatures (`token_mask`), for token-subset levels."""
        self._token_masks = self._per_value(self._token_masks, token_masks)
        masks: npt.NDArray[np.uint64] = self._token_masks.view
        return masks

    def char_matrix(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]] | None:
        """Vocabulary as a code-point matrix (see `char_matrix`), for short strings only (IDs)."""
        if self._chars is None or len(self._chars[1]) != len(self._vocab):
            if self._chars_unsupported_at == len(self._vocab):
                return None
            done = 0 if self._chars is None else len(self._chars[1])
            extra = self._vocab[done:]
            width = max((len(str(v)) for v in extra), default=0)
            if (
                self._chars is not None
                and width <= self._chars[0].view.shape[1]
                and all(isinstance(v, str) for v in extra)
            ):
                # values appended since: only their rows are built (a shard's fetched rows grow it often)
                matrix, lengths = char_matrix(extra, self._chars[0].view.shape[1])
                self._chars[0].append(matrix)
                self._chars[1].append(lengths)
            else:
                width = max((len(str(v)) for v in self._vocab), default=0)
                if width > 32 or not all(isinstance(v, str) for v in self._vocab):
                    self._chars_unsupported_at = len(self._vocab)
                    return None
                matrix, lengths = char_matrix(self._vocab, width)
                self._chars = (Growing(matrix), Growing(lengths))
        return self._chars[0].view, self._chars[1].view

    def encode(self, values: Sequence[object]) -> Codes:
        """Codes of query values in this column's vocabulary (null -> -1, unseen -> -2)."""
        index = self._index
        return np.fromiter(
            (NULL_CODE if v is None else index.get(v, UNSEEN_CODE) for v in values),
            dtype=np.int32,
            count=len(values),
        )

    def term_frequency(self, codes: Codes) -> npt.NDArray[np.float64]:
        """Splink's `tf_<col>`: share of non-null master rows holding the value (NaN for null/unseen)."""
        out = np.full(len(codes), np.nan, dtype=np.float64)
        seen = codes >= 0
        if self._frequencies is not None:
            return self._global_frequency(codes, seen, out)
        if self._non_null:
            out[seen] = self._counts[codes[seen]] / float(self._non_null)
        out[seen & (out == 0)] = np.nan  # a value only held by removed rows is absent from the table
        return out

    def _global_frequency(
        self, codes: Codes, seen: npt.NDArray[np.bool_], out: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        from linkage.engine.keys import value_hashes

        assert self._frequencies is not None
        if len(self._vocab_hashes) < len(self._vocab):  # hash the vocabulary once, new values as they come
            extra = pa.array(self._vocab[len(self._vocab_hashes) :], type=self._type)
            self._vocab_hashes = np.concatenate([self._vocab_hashes, value_hashes(extra)[0]])
        total = self._frequencies.non_null
        if total:
            out[seen] = self._frequencies.count(self._vocab_hashes[codes[seen]]) / float(total)
        out[seen & (out == 0)] = np.nan
        return out

    def extend(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Add many master rows at once (`append` for each value, vectorised over distinct values)."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not len(values):
            return
        encoded = pc.dictionary_encode(values)
        index = self._index
        mapping = np.empty(len(encoded.dictionary), dtype=np.int32)
        for i, value in enumerate(encoded.dictionary.to_pylist()):
            code = index.get(value)
            if code is None:
                code = len(self._vocab)
                self._vocab.append(value)
                index[value] = code
            mapping[i] = code
        local = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        codes = np.where(local >= 0, mapping[np.maximum(local, 0)] if len(mapping) else NULL_CODE, NULL_CODE)
        codes = codes.astype(np.int32)
        if len(self._counts) < len(self._vocab):
            grown_counts = np.zeros(max(16, 2 * len(self._vocab)), dtype=np.int64)
            grown_counts[: len(self._counts)] = self._counts
            self._counts = grown_counts
        present = codes[codes >= 0]
        # O(appended), not O(vocabulary): a shard appends a few fetched rows per batch
        np.add.at(self._counts, present, 1)
        self._non_null += len(present)
        end = self._size + len(codes)
        if end > len(self._codes):
            grown = np.empty(max(16, 2 * len(self._codes), end), dtype=np.int32)
            grown[: self._size] = self._codes[: self._size]
            self._codes = grown
        self._codes[self._size : end] = codes
        self._size = end

    def append(self, value: object) -> None:
        """Add one master row holding `value` (grows the vocabulary when the value is new)."""
        code = NULL_CODE
        if value is not None:
            code = self._index.get(value, UNSEEN_CODE)
            if code == UNSEEN_CODE:
                code = len(self._vocab)
                self._vocab.append(value)
                self._index[value] = code
                if code >= len(self._counts):  # grow by doubling: upserts stay O(1) amortised
                    grown_counts = np.zeros(max(16, 2 * len(self._counts)), dtype=np.int64)
                    grown_counts[: len(self._counts)] = self._counts
                    self._counts = grown_counts
            self._counts[code] += 1
            self._non_null += 1
        if self._size == len(self._codes):
            grown = np.empty(max(16, 2 * len(self._codes)), dtype=np.int32)
            grown[: self._size] = self._codes[: self._size]
            self._codes = grown
        self._codes[self._size] = code
        self._size += 1

    def forget(self, row: int) -> None:
        """Drop a removed master row from the term-frequency counts (its code stays for row ids)."""
        code = int(self._codes[row])
        if code >= 0:
            self._counts[code] -= 1
            self._non_null -= 1
