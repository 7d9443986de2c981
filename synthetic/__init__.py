"""Synthetic REGSOSEK world generator: a Dukcapil-like master, sectoral data, noisy submissions, truth.

    from synthetic import generate_world, World, NoiseProfile
    world = generate_world(Path("out"), regency="3603", persons=20_000, seed=7)

See docs/generator.md for the files and the noise profile.
"""

from synthetic.profile import NoiseProfile
from synthetic.regions import UnknownRegencyError
from synthetic.world import World, generate_world

__all__ = ["NoiseProfile", "UnknownRegencyError", "World", "generate_world"]
