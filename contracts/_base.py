"""Base classes and shared field types of the contracts.

Inbound messages (what producers outside our control send us) are tolerant: unknown fields are ignored so
a producer may add a field before we read it. Outbound messages (what we publish) are strict: a typo in our
own code must fail in our tests, not surprise a consumer. Every model is frozen, and validation errors never
echo the input value, because the input may hold a NIK, a KK number or a name.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints


class InboundModel(BaseModel):
    """Base of every message we receive: frozen, unknown fields ignored, surrounding blanks stripped."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        str_strip_whitespace=True,
        hide_input_in_errors=True,
        use_enum_values=False,
    )


class OutboundModel(BaseModel):
    """Base of every message we publish: frozen and strict about unknown fields."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
    )


def _blank_to_none(value: object) -> object:
    # Exports from spreadsheets and the field app write "" for "not known"; treat it as null.
    if isinstance(value, str) and not value.strip():
        return None
    return value


BlankIsNone = BeforeValidator(_blank_to_none)

#: A person's name as written: at least one character after stripping.
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]

#: The characters an identifier chosen by a producer (submission id, enumerator code, change id, DTKS
#: id) may use. Identifiers are logged and echoed in answers; a control character (CR, LF, ANSI escape)
#: or a quote in one could forge or garble a log line, so anything outside this set is refused.
SAFE_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


def safe_id(max_length: int) -> StringConstraints:
    """Constraints of an identifier field: 1..`max_length` characters from `SAFE_ID_PATTERN`."""
    return StringConstraints(min_length=1, max_length=max_length, pattern=SAFE_ID_PATTERN)


#: Kemendagri village code without dots, e.g. "3603122001".
KemendagriVillageCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]

#: Kemendagri district code without dots, e.g. "360312".
KemendagriDistrictCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


def _pad_rt_rw(value: object) -> object:
    # RT/RW are written "2", "02" or "002" in practice; the canonical form is 3 digits.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 3:
        return value.strip().zfill(3)
    return _blank_to_none(value)


#: RT or RW number, 3 digits ("002"); shorter digit strings are zero-padded on input.
RtRw = Annotated[str, BeforeValidator(_pad_rt_rw), StringConstraints(pattern=r"^[0-9]{3}$")]

#: An RT or RW number that may be missing (null or blank).
OptionalRtRw = Annotated[RtRw | None, BlankIsNone]
