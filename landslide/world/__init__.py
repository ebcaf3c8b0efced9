"""The embedded default world: seeded synthetic study areas generated on first use."""

from landslide.world.generator import (
    GENERATOR_VERSION,
    domain_seed,
    ensure_world,
    generate_domain,
)
from landslide.world.params import WorldParams

__all__ = ["GENERATOR_VERSION", "WorldParams", "domain_seed", "ensure_world", "generate_domain"]
