"""Region codes: BPS -> Kemendagri through the crosswalk, and cleaning of Kemendagri village codes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_NON_DIGIT = re.compile(r"\D")


class Crosswalk:
    """BPS <-> Kemendagri codes at district and village level (rows of `crosswalk.parquet`)."""

    def __init__(self, rows: Iterable[Mapping[str, object]]) -> None:
        self._to_kemendagri: dict[str, str] = {}
        for row in rows:
            self._to_kemendagri[str(row["bps_code"])] = str(row["kemendagri_code"])

    @classmethod
    def from_parquet(cls, path: str) -> Crosswalk:
        """Load `crosswalk.parquet`."""
        import pyarrow.parquet as pq

        return cls(pq.read_table(path).to_pylist())

    def village(self, bps_village_code: str) -> str | None:
        """Kemendagri 10-digit village code of a full 10-digit BPS village code, None if unknown."""
        return self._to_kemendagri.get(bps_village_code)

    def district(self, bps_district_code: str) -> str | None:
        """Kemendagri 6-digit district code of a full 7-digit BPS district code, None if unknown."""
        return self._to_kemendagri.get(bps_district_code)


def clean_village_code(raw: object) -> str | None:
    """A Kemendagri village code as 10 digits (dots removed), None if it is not one."""
    if raw is None:
        return None
    digits = _NON_DIGIT.sub("", str(raw))
    return digits if len(digits) == 10 else None
