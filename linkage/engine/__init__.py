"""Real-time linkage engine: scores records against a prepared in-memory master with a trained
Splink model's exact weights (see `LinkageEngine`)."""

from linkage.engine.decisions import Band, BandThresholds, ComparisonContribution, Explanation, LinkDecision
from linkage.engine.engine import LinkageEngine, ScoredPairs
from linkage.engine.errors import EngineError, MasterNotLoadedError, UnsupportedModelError
from linkage.engine.parallel import EngineWorkers
from linkage.engine.params import ModelParameters, read_model_parameters

__all__ = [
    "Band",
    "BandThresholds",
    "ComparisonContribution",
    "EngineError",
    "EngineWorkers",
    "Explanation",
    "LinkDecision",
    "LinkageEngine",
    "MasterNotLoadedError",
    "ModelParameters",
    "ScoredPairs",
    "UnsupportedModelError",
    "read_model_parameters",
]
