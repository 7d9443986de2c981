"""The comparison spec: the single declarative description of how two prepared records are compared.

Both Splink (training, batch linkage, evaluation) and the real-time engine (`linkage/engine`) read THIS
module. Splink gets it rendered into `CustomComparison`s and `block_on` rules; the engine evaluates the
same closed set of level kinds itself. Keep the kinds closed and simple: all Indonesian knowledge lives
in the prepared columns made by `linkage.normalise` (`prepare_table` / `prepare_record`).

Prepared columns (produced by `linkage.normalise.prepare.prepare_table` for master AND query records;
every column may be NULL; an empty string never occurs - unknown is always NULL):

| column | type | meaning |
|---|---|---|
| `record_id` | str | unique id (master: the NIK) |
| `nik` | str | 16 digits; NULL when missing, not 16 digits, or a sentinel (e.g. `1000000000000000`) |
| `nik_consistent` | str | `Y` when the NIK-implied birth date (day, month, 2-digit year) and sex agree
  with the stated ones, `N` when one of them disagrees, NULL when the NIK or both stated fields are unknown |
| `kk_number` | str | 16 digits or NULL |
| `name_norm` | str | upper-case ASCII name, honorifics/degrees removed, variants mapped (MUHAMMAD,
  SITI, ...), tokens separated by one space |
| `name_concat` | str | `name_norm` without spaces (`WA NASIA` == `WANASIA`) |
| `name_key` | str | Indonesian phonetic key of `name_concat` (see `linkage.normalise.names.phonetic_key`) |
| `given_name` / `given_name_key` | str | first token of `name_norm` / its phonetic key |
| `other_names` | str | remaining tokens joined by a space; NULL for a single name |
| `name_sorted` | str | the tokens of `name_norm` sorted (`NASUTION SUMIATI` == `SUMIATI NASUTION`) |
| `name_initials` | str | every token but the last reduced to its initial (`A RAHMAN` for `ABDUL RAHMAN`);
  NULL for a single name |
| `sex` | str | `M` / `F` |
| `birth_date` | str | `YYYY-MM-DD`, only for a complete valid date |
| `birth_date_real` | str | `birth_date` unless it is a placeholder (01-07 or 31-12), then NULL |
| `birth_date_swapped` | str | `birth_date` with day and month exchanged (when valid and different) |
| `birth_day_month` | str | `MM-DD` of `birth_date_real` (NULL for a placeholder or an incomplete date) |
| `birth_year` | int | year of `birth_date`, else the stated year, else derived from the stated age |
| `village_code` | str | Kemendagri 10 digits (BPS codes are mapped through the crosswalk first) |
| `district_code` | str | first 6 digits of `village_code` |
| `addr_place` | str | the address's kampung/dusun/street/estate name without prefix word, house number, RT/RW
  or desa/kecamatan parts (a desa name only when nothing else names a place); see
  `linkage.normalise.address` |
| `addr_rt` / `addr_rw` | str | RT and RW numbers without zero padding (`3`, `12`) |
| `household_key` | str | `addr_place|addr_rt|addr_rw`, only when all three are known |

Level semantics (identical in Splink and in the engine; `_l` / `_r` are the two sides of a pair):
- A comparison's value is the FIRST level whose condition is TRUE; SQL NULL (a comparison with a NULL
  operand) counts as not TRUE, so the pair falls through to the next level. The last level is always
  `ElseLevel`, the first is always a `NullLevel`.
- `NullLevel(columns)`: any listed column is NULL on either side. Weight 0 (Splink's null level).
- `ExactLevel(column, tf_adjust)`: `column_l = column_r`. With `tf_adjust`, Splink's term-frequency
  adjustment (weight 1.0, no minimum u) applies on this level; the term frequency of a value is its
  count divided by the number of non-NULL values in the MASTER's prepared column (the batch linker and
  the engine both register that table; it is not stored in the model JSON).
- `JaroWinklerLevel(column, threshold)`: DuckDB `jaro_winkler_similarity(column_l, column_r) >= threshold`
  (two-argument form; no cutoff argument).
- `DamerauLevenshteinLevel(column, max_distance)`: DuckDB `damerau_levenshtein(column_l, column_r) <=
  max_distance`.
- `CrossExactLevel(left_column, right_column)`: symmetric cross equality,
  `left_column_l = right_column_r OR right_column_l = left_column_r` (e.g. one side's day/month-swapped
  date equals the other side's date). With NULLs: TRUE if either disjunct is TRUE.
- `AbsDiffLevel(column, max_diff)`: `ABS(column_l - column_r) <= max_diff` on integers.
- `TokenSubsetLevel(column)`: the space-separated tokens of one side are all among the other side's
  tokens, in either direction: `list_has_all(str_split(column_l, ' '), str_split(column_r, ' ')) OR
  list_has_all(str_split(column_r, ' '), str_split(column_l, ' '))` (DuckDB; set semantics: order and
  repeats do not matter). A dropped or added middle name.
- `AllOf(levels)`: conjunction of the nested levels' conditions (TRUE only if all are TRUE).
- `ElseLevel()`: everything else.

Blocking: `BLOCKING_RULES[source]` is a list of column tuples; a pair is a candidate when ALL columns of
at least one tuple are equal and non-NULL on both sides (Splink `block_on`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

SPEC_VERSION = "1"

Source = Literal["members", "dtks", "bpjs"]
SOURCES: tuple[Source, ...] = ("members", "dtks", "bpjs")

PREPARED_COLUMNS: tuple[str, ...] = (
    "record_id",
    "nik",
    "nik_consistent",
    "kk_number",
    "name_norm",
    "name_concat",
    "name_key",
    "given_name",
    "given_name_key",
    "other_names",
    "name_sorted",
    "name_initials",
    "sex",
    "birth_date",
    "birth_date_real",
    "birth_date_swapped",
    "birth_day_month",
    "birth_year",
    "village_code",
    "district_code",
    "addr_place",
    "addr_rt",
    "addr_rw",
    "household_key",
)
INTEGER_COLUMNS: frozenset[str] = frozenset({"birth_year"})


@dataclass(frozen=True)
class NullLevel:
    """Any of `columns` is NULL on either side."""

    columns: tuple[str, ...]
    label: str = ""

    def sql(self) -> str:
        return " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in self.columns)


@dataclass(frozen=True)
class ExactLevel:
    """`column_l = column_r`, optionally with term-frequency adjustment."""

    column: str
    tf_adjust: bool = False
    label: str = ""

    def sql(self) -> str:
        return f"{self.column}_l = {self.column}_r"


@dataclass(frozen=True)
class JaroWinklerLevel:
    """Jaro-Winkler similarity >= threshold (DuckDB `jaro_winkler_similarity`)."""

    column: str
    threshold: float
    label: str = ""

    def sql(self) -> str:
        return f"jaro_winkler_similarity({self.column}_l, {self.column}_r) >= {self.threshold}"


@dataclass(frozen=True)
class DamerauLevenshteinLevel:
    """Damerau-Levenshtein distance <= max_distance (DuckDB `damerau_levenshtein`)."""

    column: str
    max_distance: int
    label: str = ""

    def sql(self) -> str:
        return f"damerau_levenshtein({self.column}_l, {self.column}_r) <= {self.max_distance}"


@dataclass(frozen=True)
class CrossExactLevel:
    """Symmetric cross equality of two columns (see module docstring)."""

    left_column: str
    right_column: str
    label: str = ""

    def sql(self) -> str:
        a, b = self.left_column, self.right_column
        return f"({a}_l = {b}_r) OR ({b}_l = {a}_r)"


@dataclass(frozen=True)
class AbsDiffLevel:
    """`ABS(column_l - column_r) <= max_diff` on a numeric column."""

    column: str
    max_diff: int
    label: str = ""

    def sql(self) -> str:
        return f"ABS({self.column}_l - {self.column}_r) <= {self.max_diff}"


@dataclass(frozen=True)
class TokenSubsetLevel:
    """One side's name tokens all among the other side's (either direction; see module docstring)."""

    column: str
    label: str = ""

    def sql(self) -> str:
        c = self.column
        return (
            f"list_has_all(str_split({c}_l, ' '), str_split({c}_r, ' ')) OR "
            f"list_has_all(str_split({c}_r, ' '), str_split({c}_l, ' '))"
        )

    def spark_sql(self) -> str:
        """The same condition in Spark SQL (no `list_has_all` there): nothing left after removing the
        other side's tokens, in either direction."""
        c = self.column
        return (
            f"size(array_except(split({c}_r, ' '), split({c}_l, ' '))) = 0 OR "
            f"size(array_except(split({c}_l, ' '), split({c}_r, ' '))) = 0"
        )


@dataclass(frozen=True)
class AllOf:
    """Conjunction of simple levels (no nested AllOf, no Null/Else inside)."""

    levels: tuple[SimpleLevel, ...]
    label: str = ""

    def sql(self) -> str:
        return " AND ".join(f"({lv.sql()})" for lv in self.levels)


@dataclass(frozen=True)
class ElseLevel:
    """All other pairs."""

    label: str = "All other comparisons"

    def sql(self) -> str:
        return "ELSE"


SimpleLevel = (
    ExactLevel | JaroWinklerLevel | DamerauLevenshteinLevel | CrossExactLevel | AbsDiffLevel | TokenSubsetLevel
)
Level = NullLevel | SimpleLevel | AllOf | ElseLevel


@dataclass(frozen=True)
class Comparison:
    """One comparison: an output name (Splink's `output_column_name`) and its ordered levels."""

    name: str
    levels: tuple[Level, ...]
    description: str = ""

    def columns(self) -> tuple[str, ...]:
        """Prepared columns this comparison reads (in first-use order)."""
        seen: dict[str, None] = {}
        for level in self.levels:
            for col in _level_columns(level):
                seen.setdefault(col, None)
        return tuple(seen)


def _level_columns(level: Level) -> tuple[str, ...]:
    if isinstance(level, NullLevel):
        return level.columns
    if isinstance(level, CrossExactLevel):
        return (level.left_column, level.right_column)
    if isinstance(level, AllOf):
        return tuple(c for lv in level.levels for c in _level_columns(lv))
    if isinstance(level, ElseLevel):
        return ()
    return (level.column,)


# --- the comparisons ---------------------------------------------------------------------------------

NIK = Comparison(
    "nik",
    (
        NullLevel(("nik",), "NIK missing"),
        AllOf((ExactLevel("nik"), ExactLevel("nik_consistent")), "NIK equal, consistent with birth date/sex"),
        ExactLevel("nik", label="NIK equal, not consistent with stated birth date/sex"),
        DamerauLevenshteinLevel("nik", 1, "NIK one typo or transposition apart"),
        ElseLevel(),
    ),
    "NIK; a NIK that disagrees with the stated birth date or sex often belongs to a relative",
)

NAME = Comparison(
    "name",
    (
        NullLevel(("name_norm",), "name missing"),
        ExactLevel("name_norm", tf_adjust=True, label="normalised name equal"),
        ExactLevel("name_concat", label="equal apart from spacing"),
        ExactLevel("name_sorted", label="same tokens in another order"),
        JaroWinklerLevel("name_concat", 0.94, "Jaro-Winkler >= 0.94"),
        TokenSubsetLevel("name_norm", "one name's tokens all in the other (dropped or added name)"),
        ExactLevel("name_initials", label="equal up to initials (A. Rahman ~ Abdul Rahman)"),
        ExactLevel("name_key", label="phonetic key equal"),
        JaroWinklerLevel("name_concat", 0.85, "Jaro-Winkler >= 0.85"),
        ElseLevel(),
    ),
    "full name after Indonesian normalisation; token-aware levels for reordered, dropped and initialled names",
)

BIRTH_DATE = Comparison(
    "birth_date",
    (
        NullLevel(("birth_year",), "birth date unknown"),
        ExactLevel("birth_date_real", label="birth date equal (not a placeholder)"),
        ExactLevel("birth_date", label="placeholder birth date (01-07 / 31-12) equal"),
        CrossExactLevel("birth_date_swapped", "birth_date", "day and month swapped"),
        AllOf(
            (ExactLevel("birth_day_month"), AbsDiffLevel("birth_year", 1)),
            "same day and month, year off by one",
        ),
        DamerauLevenshteinLevel("birth_date", 1, "one digit typed wrong or two adjacent digits transposed"),
        ExactLevel("birth_year", label="birth year equal"),
        AbsDiffLevel("birth_year", 1, "birth year within 1 (age-derived)"),
        ElseLevel(),
    ),
    "birth date: exact, placeholder, swapped, year off by one, one digit typo, year only, age-derived range",
)

SEX = Comparison(
    "sex",
    (NullLevel(("sex",), "sex missing"), ExactLevel("sex", label="sex equal"), ElseLevel()),
    "sex",
)

VILLAGE = Comparison(
    "village",
    (
        NullLevel(("village_code",), "village missing"),
        ExactLevel("village_code", label="same village"),
        ExactLevel("district_code", label="same district"),
        ElseLevel(),
    ),
    "Kemendagri village (BPS codes mapped through the crosswalk)",
)

ADDRESS = Comparison(
    "address",
    (
        NullLevel(("addr_place",), "address place missing"),
        ExactLevel("household_key", tf_adjust=True, label="same place, RT and RW"),
        AllOf((ExactLevel("addr_place"), ExactLevel("addr_rt")), "same place and RT"),
        ExactLevel("addr_place", label="same place (RT/RW differ or unknown)"),
        JaroWinklerLevel("addr_place", 0.9, "place Jaro-Winkler >= 0.9"),
        JaroWinklerLevel("addr_place", 0.8, "place Jaro-Winkler >= 0.8 (a word added or dropped, typos)"),
        ElseLevel(),
    ),
    "household address: kampung/street + RT/RW (see linkage.normalise.address)",
)

KK_NUMBER = Comparison(
    "kk_number",
    (NullLevel(("kk_number",), "KK missing"), ExactLevel("kk_number", label="same KK"), ElseLevel()),
    "family card number (changes on moves, splits, deaths: evidence, not identity)",
)

COMPARISONS: dict[Source, tuple[Comparison, ...]] = {
    "members": (NIK, NAME, BIRTH_DATE, SEX, VILLAGE, ADDRESS, KK_NUMBER),
    "dtks": (NIK, NAME, BIRTH_DATE, SEX, VILLAGE, ADDRESS),
    "bpjs": (NIK, NAME, BIRTH_DATE, SEX, VILLAGE, ADDRESS),
}

# Every rule is either near-unique (NIK, KK, name key + full birth date) or bounded by a region (village
# or district): a block then holds the people of one place, not of the whole master, so the candidates
# per record stay about constant as the master grows by regions (docs/linkage-model.md, "Blocking that
# stays bounded"). The earlier `given_name_key + village_code` and `birth_date + sex` grew with the
# master (20 and 14 pairs per record on a 1M master); their narrower forms plus the day-and-month and
# sorted-token rules find the same true pairs on generated worlds (more on the `hard` one).
_COMMON_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("nik",),
    ("name_key", "birth_date"),
    ("name_key", "birth_year", "district_code"),
    ("given_name_key", "village_code", "birth_year"),
    ("given_name_key", "village_code", "birth_day_month"),
    ("birth_date", "sex", "village_code"),
    ("name_sorted", "district_code"),
)
BLOCKING_RULES: dict[Source, tuple[tuple[str, ...], ...]] = {
    "members": (*_COMMON_BLOCKING, ("kk_number",)),
    "dtks": _COMMON_BLOCKING,
    "bpjs": _COMMON_BLOCKING,
}

# Rules for the two EM passes (see linkage.model.training): NIK first, then name key + birth year.
EM_TRAINING_RULES: tuple[tuple[str, ...], ...] = (("nik",), ("name_key", "birth_year"))
# Deterministic rules used to estimate the prior (probability two random records match).
DETERMINISTIC_RULES: tuple[tuple[str, ...], ...] = (("nik", "birth_date"), ("name_norm", "birth_date"))

UNIQUE_ID = "record_id"


# --- rendering to Splink -----------------------------------------------------------------------------


def _render_level(level: Level) -> Any:
    import splink.comparison_level_library as cll

    creator: Any
    if isinstance(level, NullLevel):
        creator = cll.CustomLevel(level.sql()).configure(is_null_level=True)
    elif isinstance(level, ExactLevel):
        creator = cll.ExactMatchLevel(level.column, term_frequency_adjustments=level.tf_adjust)
    elif isinstance(level, JaroWinklerLevel):
        creator = cll.JaroWinklerLevel(level.column, level.threshold)
    elif isinstance(level, DamerauLevenshteinLevel):
        creator = cll.DamerauLevenshteinLevel(level.column, level.max_distance)
    elif isinstance(level, (CrossExactLevel, TokenSubsetLevel)):
        creator = cll.CustomLevel(level.sql())
    elif isinstance(level, AbsDiffLevel):
        creator = cll.AbsoluteDifferenceLevel(level.column, level.max_diff)
    elif isinstance(level, AllOf):
        creator = cll.And(*[_render_level(lv) for lv in level.levels])
    else:
        creator = cll.ElseLevel()
    if level.label:
        creator.configure(label_for_charts=level.label)
    return creator


def render_comparison(comparison: Comparison) -> Any:
    """Render one comparison as a Splink `CustomComparison`."""
    import splink.comparison_library as cl

    return cl.CustomComparison(
        comparison_levels=[_render_level(lv) for lv in comparison.levels],
        output_column_name=comparison.name,
        comparison_description=comparison.description or comparison.name,
    )


def render_blocking(rules: Sequence[tuple[str, ...]]) -> list[Any]:
    """Render column tuples as Splink `block_on` rules."""
    from splink import block_on

    return [block_on(*cols) for cols in rules]


def render_settings(
    source: Source, *, link_type: Literal["link_only", "link_and_dedupe", "dedupe_only"] = "link_only"
) -> Any:
    """Splink `SettingsCreator` for one source's model (comparisons + blocking rules of this spec)."""
    from splink import SettingsCreator

    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name=UNIQUE_ID,
        comparisons=[render_comparison(c) for c in COMPARISONS[source]],
        blocking_rules_to_generate_predictions=render_blocking(BLOCKING_RULES[source]),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
