"""Candidate details from the population master (the generated world's `population.parquet`).

The review record carries candidate NIKs and scores only; names, dates and the KK come from the master.
Looked up per page with DuckDB straight from the Parquet file (no copy held in memory).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import duckdb

_COLUMNS = (
    "nik",
    "kk_number",
    "full_name",
    "sex",
    "birth_place",
    "birth_date",
    "relationship",
    "village_code",
    "address",
    "status",
)


class MasterLookup(Protocol):
    """Where the app reads master persons from."""

    def persons(self, niks: list[str]) -> dict[str, dict[str, Any]]:
        """NIK -> master row for the NIKs found."""
        ...

    def kk_members(self, kk_number: str) -> list[dict[str, Any]]:
        """Every master person on a KK."""
        ...


class NoMaster:
    """No master configured: candidates are shown with their scores only."""

    def persons(self, niks: list[str]) -> dict[str, dict[str, Any]]:
        return {}

    def kk_members(self, kk_number: str) -> list[dict[str, Any]]:
        return []


class ParquetMaster:
    """Master rows read from a Parquet file with the columns of docs/data-model.md."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"master file {path} does not exist")
        self._path = str(path)
        self._db = duckdb.connect()
        self._lock = threading.Lock()

    def _query(self, where: str, args: list[Any]) -> list[dict[str, Any]]:
        cols = ", ".join(_COLUMNS)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {cols} FROM read_parquet(?) WHERE {where} ORDER BY nik", [self._path, *args]
            ).fetchall()
        return [{c: (str(v) if v is not None else None) for c, v in zip(_COLUMNS, row, strict=True)} for row in rows]

    def persons(self, niks: list[str]) -> dict[str, dict[str, Any]]:
        if not niks:
            return {}
        return {r["nik"]: r for r in self._query("list_contains(?, nik)", [niks])}

    def kk_members(self, kk_number: str) -> list[dict[str, Any]]:
        return self._query("kk_number = ?", [kk_number])
