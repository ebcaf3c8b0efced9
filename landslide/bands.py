"""The paper's ten input bands, in the order every stack on disk and every tensor uses."""

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

#: Indexes of the post-event true-colour bands, for figures.
POST_RGB: tuple[int, int, int] = (
    BANDS.index("post_red"),
    BANDS.index("post_green"),
    BANDS.index("post_blue"),
)
