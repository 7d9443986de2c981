"""Coded answers of the REGSOSEK22-K questionnaire as IntEnums (the JSON carries the small integer).

Code numbers follow the questionnaire's answer order where we know it; where the published form groups
answers differently we keep a documented, stable subset. Adding a member to an enum is a compatible change
inside a version; renumbering or removing one is not.
"""

from __future__ import annotations

from enum import IntEnum


class KkCode(IntEnum):
    """Item 115, how the family relates to its KK (family card)."""

    KK_MATCHES = 0  #: the KK lists this family as it is
    PARENT_FAMILY = 1  #: the family is still on its parents' KK
    SPLIT_FAMILY = 2  #: the family split off but its KK has not changed yet


class Presence(IntEnum):
    """Item 404, the member's presence status: an update signal for the population master."""

    LIVES_HERE = 1
    DIED = 2
    MOVED = 3
    NEW_MEMBER = 4
    NOT_FOUND = 5


class Sex(IntEnum):
    """Item 405."""

    MALE = 1
    FEMALE = 2


class MaritalStatus(IntEnum):
    """Item 408."""

    NEVER_MARRIED = 1
    MARRIED = 2
    DIVORCED = 3
    WIDOWED = 4


class Relationship(IntEnum):
    """Item 409, relationship to the head of the family."""

    HEAD = 1
    SPOUSE = 2
    CHILD = 3
    CHILD_IN_LAW = 4
    GRANDCHILD = 5
    PARENT_OR_PARENT_IN_LAW = 6
    DOMESTIC_WORKER = 7
    OTHER = 8


class Tenure(IntEnum):
    """Item 301, ownership of the dwelling."""

    OWNED = 1
    LEASED = 2  #: contract for several years (kontrak)
    RENTED = 3  #: monthly rent (sewa)
    RENT_FREE = 4
    OFFICIAL_HOUSING = 5  #: rumah dinas
    OTHER = 6


class FloorMaterial(IntEnum):
    """Item 303, widest floor material."""

    MARBLE_GRANITE = 1
    CERAMIC = 2
    PARQUET_VINYL_CARPET = 3
    TILE_TERRAZZO = 4
    WOOD_BOARD = 5
    CEMENT_RED_BRICK = 6
    BAMBOO = 7
    EARTH = 8
    OTHER = 9


class WallMaterial(IntEnum):
    """Item 304, widest wall material."""

    MASONRY = 1
    PLASTERED_BAMBOO_OR_WIRE = 2
    WOOD_BOARD = 3
    WOVEN_BAMBOO = 4
    WOODEN_LOGS = 5
    BAMBOO = 6
    OTHER = 7


class RoofMaterial(IntEnum):
    """Item 305, widest roof material."""

    CONCRETE = 1
    CLAY_TILE = 2
    ASBESTOS = 3
    ZINC = 4
    WOOD_SHINGLE = 5
    BAMBOO = 6
    STRAW_LEAVES = 7
    OTHER = 8


class WaterSource(IntEnum):
    """Item 306, main source of drinking water."""

    BOTTLED = 1
    REFILL = 2
    PIPED_METERED = 3
    PIPED_RETAIL = 4
    BOREHOLE_PUMP = 5
    PROTECTED_WELL = 6
    UNPROTECTED_WELL = 7
    PROTECTED_SPRING = 8
    UNPROTECTED_SPRING = 9
    SURFACE_WATER = 10
    RAIN_WATER = 11
    OTHER = 12


class Electricity(IntEnum):
    """Item 307, main source of lighting."""

    PLN_METERED = 1
    PLN_UNMETERED = 2
    NON_PLN = 3
    NONE = 4


class CookingFuel(IntEnum):
    """Item 308, main cooking fuel."""

    DOES_NOT_COOK = 0
    ELECTRICITY = 1
    LPG_LARGE = 2  #: 5.5 kg cylinder or larger
    LPG_3KG = 3  #: subsidised 3 kg cylinder
    BIOGAS = 4
    KEROSENE = 5
    BRIQUETTE = 6
    CHARCOAL = 7
    FIREWOOD = 8
    OTHER = 9


class Toilet(IntEnum):
    """Item 309, use of a toilet (defecation facility)."""

    OWN = 1
    SHARED = 2  #: shared with certain other households
    COMMUNAL = 3  #: MCK komunal
    PUBLIC = 4
    NONE = 5


class SchoolParticipation(IntEnum):
    """Item 412."""

    NEVER_ATTENDED = 1
    IN_SCHOOL = 2
    NO_LONGER_IN_SCHOOL = 3


class EducationLevel(IntEnum):
    """Item 413, highest level attended (grouped)."""

    NONE = 0
    PRIMARY = 1  #: SD / MI / Paket A
    JUNIOR_SECONDARY = 2  #: SMP / MTs / Paket B
    SENIOR_SECONDARY = 3  #: SMA / MA / Paket C
    VOCATIONAL_SECONDARY = 4  #: SMK / MAK
    DIPLOMA = 5  #: D1-D3
    BACHELOR = 6  #: D4 / S1
    POSTGRADUATE = 7  #: S2 / S3


class Sector(IntEnum):
    """Item 417, main sector of the main job (grouped KBLI sections)."""

    AGRICULTURE_FORESTRY_FISHERY = 1
    MINING = 2
    MANUFACTURING = 3
    UTILITIES = 4
    CONSTRUCTION = 5
    TRADE = 6
    TRANSPORT_STORAGE = 7
    ACCOMMODATION_FOOD = 8
    INFORMATION_COMMUNICATION = 9
    FINANCE_INSURANCE = 10
    PUBLIC_ADMIN_EDUCATION_HEALTH = 11
    OTHER_SERVICES = 12


class EmploymentStatus(IntEnum):
    """Item 418, status in the main job."""

    OWN_ACCOUNT = 1
    EMPLOYER_TEMPORARY_WORKERS = 2
    EMPLOYER_PERMANENT_WORKERS = 3
    EMPLOYEE = 4
    CASUAL_AGRICULTURAL = 5
    CASUAL_NON_AGRICULTURAL = 6
    UNPAID_FAMILY_WORKER = 7


class Difficulty(IntEnum):
    """Items 427-430, Washington Group functional difficulty scale."""

    NO_DIFFICULTY = 1
    SOME_DIFFICULTY = 2
    A_LOT_OF_DIFFICULTY = 3
    CANNOT_DO_AT_ALL = 4
