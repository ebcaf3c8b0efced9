"""The paper's ten input bands, in the order every stack on disk and every tensor uses."""

from collections.abc import Iterable

BANDS: tuple[str, ...] = (
    "slope",
    "hillshade",
    "pre_red",
    "pre_green",
    "pre_blue",
    "post_red",
    "post_green",
    "post_blue",
    "pre_ndvi",
    "post_ndvi",
)

#: The post-event true-colour bands, shown in figures.
POST_RGB: tuple[str, str, str] = ("post_red", "post_green", "post_blue")

#: The pre-event true-colour bands, shown in figures when a band set has no post-event RGB.
PRE_RGB: tuple[str, str, str] = ("pre_red", "pre_green", "pre_blue")


def band_set(names: Iterable[str]) -> tuple[str, ...]:
    """Check a band set and put it in :data:`BANDS` order.

    Any subset of the paper's ten bands is a valid input: RGB-only or post-event-only
    inventories and areas without a DEM are common. Stacks, statistics and tensors always
    hold a band set's bands in :data:`BANDS` order.

    Args:
        names: band names, each one of :data:`BANDS`.

    Returns:
        The bands, without repeats, in :data:`BANDS` order.

    Raises:
        ValueError: if a name is not a band or the set is empty.
    """
    names = list(names)
    unknown = [n for n in names if n not in BANDS]
    if unknown:
        raise ValueError(f"unknown bands {unknown}; choose from {', '.join(BANDS)}")
    if not names:
        raise ValueError(f"the band set is empty; choose from {', '.join(BANDS)}")
    return tuple(b for b in BANDS if b in names)
