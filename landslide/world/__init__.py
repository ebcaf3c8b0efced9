"""The embedded default world: seeded synthetic study areas generated on first use."""

from landslide.world.generator import (
    GENERATOR_VERSION,
    ensure_world,
    generate_domain,
    simulation_seed,
)
from landslide.world.params import WorldParams
from landslide.world.simulated import SimulatedWorld

__all__ = [
    "GENERATOR_VERSION",
    "SimulatedWorld",
    "WorldParams",
    "ensure_world",
    "generate_domain",
    "simulation_seed",
]
