"""Indonesian-aware normalisation: raw linkage records -> the prepared columns of `linkage.comparisons`."""

from linkage.normalise.prepare import prepare_record, prepare_table

__all__ = ["prepare_record", "prepare_table"]
