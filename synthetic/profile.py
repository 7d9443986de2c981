"""The noise profile: how often each kind of error or event appears in a generated world.

Rates are fractions of the records they apply to (see docs/generator.md for the table). Every rate is
measured back from a generated world by tests/unit/synthetic/test_noise_rates.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class NoiseProfile:
    """Rates of the world's events and of the field noise in submissions and sectoral data."""

    # --- the master (Dukcapil) itself
    master_dead: float = 0.012  # persons with status dead (mostly elderly); not enumerated
    master_moved_out: float = 0.02  # families known to have moved out of the regency; not enumerated
    born_elsewhere: float = 0.10  # NIK first issued in another regency of the province
    master_placeholder_dob: float = 0.03  # of persons born before 1970: 01-07 / 31-12 already in the master
    # --- which families are enumerated
    family_coverage: float = 0.97  # resident families that get a submission
    duplicate_family: float = 0.02  # enumerated families submitted a second time under another key
    revised_family: float = 0.03  # enumerated families re-submitted later as revision 2
    kk_missing: float = 0.15  # submissions without a KK number (not a member noise tag)
    # --- member noise (fractions of submitted members that are in the master)
    nik_missing: float = 0.25
    nik_family_member: float = 0.012  # another member's NIK (structurally valid)
    nik_transposed: float = 0.008  # two adjacent digits swapped
    nik_mistyped: float = 0.010  # one digit replaced
    nik_relative: float = 0.0  # the NIK of a relative in another family of the village (another KK)
    # Of the mistyped NIKs: the share that is structurally invalid (serial 0000). The contracts reject
    # such a NIK, so the whole submission becomes a dead letter; 0 by default so that every line
    # validates. Raise it (e.g. 0.2) to exercise the dead-letter path with realistic data.
    nik_invalid_share: float = 0.0
    name_variant: float = 0.08  # Muhammad/Muhamad/M., Siti/Sity, old spellings (oe/dj/tj)
    name_honorific: float = 0.04  # H., Hj., Drs., Ir., dr., Tgk. and degrees S.Pd., S.Kom., ...
    name_case_spacing: float = 0.05  # upper/lower case, doubled or missing spaces
    name_token_dropped: float = 0.0  # a middle (or second) name left out: "Sumiati Nasution"
    name_token_added: float = 0.0  # an extra middle name: "Sumiati Dwi Nasution"
    name_reordered: float = 0.0  # the last token written first: "Nasution Sumiati"
    name_initial: float = 0.0  # a token before the last as its initial: "M. Rizki", "S. Nasution"
    dob_swapped: float = 0.015  # day and month swapped (only possible when day <= 12)
    dob_year_only: float = 0.03  # day and month unknown (98 on paper, null here)
    dob_placeholder: float = 0.015  # replaced by 01-07 or 31-12 of the same year
    dob_year_off: float = 0.0  # the year one up or down, same day and month
    sex_missing: float = 0.02
    died: float = 0.008  # reported with presence 2 (died since the master snapshot)
    moved: float = 0.015  # reported with presence 3 (moved out since the snapshot)
    # --- the family's address (fractions of submissions; every member of the submission carries it)
    addr_moved: float = 0.02  # moved to another street/kampung and RT of the village since the snapshot
    addr_abbreviation: float = 0.30  # prefix word spelled otherwise: Kp./Kmp./Kampung, Jl./Jln./Jalan, Gg./Gang
    addr_rtrw_inline: float = 0.20  # RT/RW written in the street line ("RT.003/RW.009", "003/009", ...)
    addr_missing_part: float = 0.05  # the street line, the RT or the RW left empty
    addr_typo: float = 0.03  # one letter of the place name wrong, missing or doubled
    # --- members not in the master, as a fraction of all submitted members
    not_in_master: float = 0.03
    newborn_share: float = 0.5  # of the not-in-master members: babies born after the snapshot
    # --- sectoral databases
    dtks_nik_present: float = 0.80
    dtks_nik_wrong: float = 0.04  # of present NIKs: mistyped or transposed
    dtks_not_in_master: float = 0.01
    bpjs_nik_present: float = 0.90
    bpjs_nik_wrong: float = 0.01
    bpjs_not_in_master: float = 0.005

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"noise rate {f.name} must be within [0, 1], got {value}")
        nik_total = self.nik_missing + self.nik_family_member + self.nik_transposed + self.nik_mistyped
        if nik_total + self.nik_relative > 1.0:
            raise ValueError("the NIK noise rates together must not exceed 1")
        if self.dob_swapped + self.dob_year_only + self.dob_placeholder + self.dob_year_off > 0.3:
            raise ValueError("the birth-date noise rates together must not exceed 0.3")
        if self.died + self.moved > 0.5:
            raise ValueError("died + moved must not exceed 0.5")

    @classmethod
    def clean(cls) -> NoiseProfile:
        """No field noise and no events: submissions equal the master (useful for debugging)."""
        zero = {
            f.name: 0.0
            for f in fields(cls)
            if f.name not in {"family_coverage", "dtks_nik_present", "bpjs_nik_present", "newborn_share"}
        }
        return cls(**zero, family_coverage=1.0, dtks_nik_present=1.0, bpjs_nik_present=1.0)

    @classmethod
    def noisy(cls) -> NoiseProfile:
        """Twice the default field-noise rates: a harder world for robustness checks."""
        base = cls()
        doubled = {
            name: min(1.0, 2 * getattr(base, name))
            for name in (
                "nik_family_member",
                "nik_transposed",
                "nik_mistyped",
                "name_variant",
                "name_honorific",
                "name_case_spacing",
                "dob_swapped",
                "dob_year_only",
                "dob_placeholder",
                "sex_missing",
                "duplicate_family",
                "revised_family",
                "not_in_master",
                "dtks_nik_wrong",
                "bpjs_nik_wrong",
            )
        }
        return replace(base, **doubled)

    @classmethod
    def hard(cls) -> NoiseProfile:
        """A world like the registers written by others: 30% without NIK, relatives' NIKs, dropped and
        added name tokens, initials, years off by one, 15% of members not in the master, messy addresses."""
        return replace(
            cls(),
            kk_missing=0.30,
            nik_missing=0.30,
            nik_family_member=0.03,
            nik_relative=0.01,
            nik_transposed=0.01,
            nik_mistyped=0.015,
            name_variant=0.10,
            name_honorific=0.05,
            name_case_spacing=0.08,
            name_token_dropped=0.05,
            name_token_added=0.02,
            name_reordered=0.01,
            name_initial=0.03,
            dob_swapped=0.02,
            dob_year_only=0.06,
            dob_placeholder=0.02,
            dob_year_off=0.04,
            sex_missing=0.03,
            addr_moved=0.05,
            addr_abbreviation=0.40,
            addr_rtrw_inline=0.30,
            addr_missing_part=0.08,
            addr_typo=0.05,
            not_in_master=0.15,
            duplicate_family=0.03,
            revised_family=0.03,
        )

    @classmethod
    def named(cls, name: str) -> NoiseProfile:
        """A preset by name (`default`, `clean`, `noisy`, `hard`) or a JSON file of overrides of the default."""
        presets: dict[str, Callable[[], NoiseProfile]] = {
            "default": cls,
            "clean": cls.clean,
            "noisy": cls.noisy,
            "hard": cls.hard,
        }
        if name in presets:
            return presets[name]()
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"unknown noise profile {name!r}: use default, clean, noisy, hard or a JSON file")
        try:
            overrides = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"noise profile {name} is not valid JSON: {e}") from e
        known = {f.name for f in fields(cls)}
        if not isinstance(overrides, dict) or set(overrides) - known:
            unknown = sorted(set(overrides) - known) if isinstance(overrides, dict) else overrides
            raise ValueError(f"noise profile {name} has unknown keys: {unknown}")
        return replace(cls(), **{k: float(v) for k, v in overrides.items()})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
