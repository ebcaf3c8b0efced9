"""Write made-up inputs in the shapes real landslide data comes in, cut from the default world.

Public samples cannot be shipped with the project, so ``experiments/real_data.md`` runs its
commands on files of the same formats made from a simulated domain (the default world's
Iburi unless ``--domain`` says otherwise): the imagery and labels carry the world's
landslides, the formats are the real datasets'.

* ``s2_tiles/``: Sentinel-2 L2A surface reflectance as an Earth Engine export split into
  four overlapping uint16 GeoTIFF tiles per date (bands ``B2 B3 B4 B8``, no nodata value
  declared, a 0-filled strip along each tile's outer edge) and *sparse point labels*: a
  uint8 raster that is 255 (unknown) except 3 x 3 px spots on sampled landslide and stable
  pixels.
* ``rgb_tiles/``: 8-bit RGB post-event tiles (GeoTIFF, values 0-255) with 0/255 label tiles,
  as coseismic RGB sets are distributed.
* ``bijie/``: the Bijie benchmark's layout: ``landslide/image/*.png`` (RGB) with
  ``landslide/mask/*.png`` (0/255) and ``non-landslide/image/*.png``, no georeferencing,
  sizes varying around 100-140 px.
* ``landslide4sense/``: Landslide4Sense's layout: ``img/image_<i>.h5`` (dataset ``img``,
  128 x 128 x 14 float: Sentinel-2 B1-B12 reflectance, slope in degrees, a DEM) and
  ``mask/mask_<i>.h5`` (dataset ``mask``, 0/1). The DEM is a made-up smooth surface (the
  world keeps no elevation), so only its slope band carries the world's terrain.

Usage: ``uv run python experiments/real_data_samples.py [--out data/real_data_samples]``
(the default world is generated first if it is not there).
"""

import argparse
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.windows import Window

from landslide.bands import BANDS
from landslide.layout import IGNORED, LANDSLIDE, STABLE


def band(stack: np.ndarray, name: str) -> np.ndarray:
    return stack[BANDS.index(name)]


def nir(stack: np.ndarray, date: str) -> np.ndarray:
    """Near-infrared reflectance from red and NDVI (the world stores NDVI, not NIR)."""
    red, index = band(stack, f"{date}_red"), band(stack, f"{date}_ndvi")
    return red * (1 + index) / np.clip(1 - index, 1e-3, None)


def tiles(size: int, overlap: int = 24) -> list[Window]:
    """Four overlapping quarters of a ``size`` px square."""
    half = size // 2
    return [
        Window(col, row, half + overlap, half + overlap)
        for row in (0, half - overlap)
        for col in (0, half - overlap)
    ]


def write_tiles(
    folder: Path,
    data: np.ndarray,
    profile: dict,
    descriptions: tuple[str, ...] | None = None,
    zero_strip: int = 0,
) -> None:
    """Cut ``data`` [bands, H, W] into :func:`tiles`, zeroing ``zero_strip`` px along each
    tile's outer edge (an export's fill, with no nodata value declared)."""
    folder.mkdir(parents=True, exist_ok=True)
    size = data.shape[-1]
    for i, window in enumerate(tiles(size)):
        piece = data[
            :,
            window.row_off : window.row_off + window.height,
            window.col_off : window.col_off + window.width,
        ].copy()
        if zero_strip:
            if window.row_off == 0:
                piece[:, :zero_strip] = 0
            else:
                piece[:, -zero_strip:] = 0
        transform = rasterio.windows.transform(window, profile["transform"])
        out = {
            **profile,
            "count": piece.shape[0],
            "dtype": piece.dtype.name,
            "width": window.width,
            "height": window.height,
            "transform": transform,
            "nodata": None,
        }
        with rasterio.open(folder / f"tile_{i}.tif", "w", **out) as dst:
            dst.write(piece)
            if descriptions:
                dst.descriptions = descriptions


def point_labels(mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """255 everywhere except 3 x 3 spots centred on ``count`` landslide and ``count`` stable
    pixels drawn at random."""
    labels = np.full(mask.shape, IGNORED, np.uint8)
    for value in (LANDSLIDE, STABLE):
        rows, cols = np.nonzero(mask[1:-1, 1:-1] == value)
        chosen = rng.choice(len(rows), size=min(count, len(rows)), replace=False)
        for r, c in zip(rows[chosen] + 1, cols[chosen] + 1, strict=True):
            labels[r - 1 : r + 2, c - 1 : c + 2] = value
    return labels


def patches(size: int, count: int, rng: np.random.Generator, side: tuple[int, int]):
    """Random square windows of a side drawn from ``side``."""
    for _ in range(count):
        n = int(rng.integers(*side))
        r, c = rng.integers(0, size - n, 2)
        yield slice(r, r + n), slice(c, c + n)


def to_uint8(reflectance: np.ndarray) -> np.ndarray:
    return np.clip(np.round(reflectance * 255.0), 0, 255).astype(np.uint8)


def write_bijie(out: Path, stack: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    rgb = np.stack([band(stack, f"post_{c}") for c in ("red", "green", "blue")], axis=-1)
    kinds = {"landslide": 0, "non-landslide": 0}
    for rows, cols in patches(mask.shape[0], 400, rng, (100, 141)):
        window = mask[rows, cols]
        kind = (
            "landslide" if window.mean() > 0.02 else ("non-landslide" if not window.any() else None)
        )
        if kind is None or kinds[kind] >= 60:
            continue
        kinds[kind] += 1
        name = f"{kind[:2]}{kinds[kind]:03d}.png"
        (out / kind / "image").mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(rgb[rows, cols])).save(out / kind / "image" / name)
        if kind == "landslide":
            (out / kind / "mask").mkdir(parents=True, exist_ok=True)
            Image.fromarray((window * 255).astype(np.uint8)).save(out / kind / "mask" / name)


def write_landslide4sense(
    out: Path, stack: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> None:
    import h5py

    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "mask").mkdir(parents=True, exist_ok=True)
    size = mask.shape[0]
    y, x = np.mgrid[0:size, 0:size] * 10.0
    dem = 300.0 + 80.0 * np.sin(x / 900.0) * np.cos(y / 1300.0)
    post = {c: band(stack, f"post_{c}") for c in ("red", "green", "blue")}
    post["nir"] = nir(stack, "post")
    # B1-B12; bands other than B2, B3, B4, B8 are filled from their nearest colour.
    colour_of = [
        "blue",
        "blue",
        "green",
        "red",
        "red",
        "nir",
        "nir",
        "nir",
        "nir",
        "nir",
        "nir",
        "red",
    ]
    kinds = {True: 0, False: 0}
    i = 0
    for rows, cols in patches(size, 2000, rng, (128, 129)):
        positive = bool(mask[rows, cols].any())
        if kinds[positive] >= 40:  # 40 with landslides, 40 without
            continue
        kinds[positive] += 1
        i += 1
        image = np.stack(
            [post[c][rows, cols] for c in colour_of]
            + [band(stack, "slope")[rows, cols], dem[rows, cols]],
            axis=-1,
        ).astype(np.float32)
        with h5py.File(out / "img" / f"image_{i}.h5", "w") as f:
            f.create_dataset("img", data=image)
        with h5py.File(out / "mask" / f"mask_{i}.h5", "w") as f:
            f.create_dataset("mask", data=mask[rows, cols].astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/default_world"))
    parser.add_argument("--domain", default="iburi")
    parser.add_argument("--out", type=Path, default=Path("data/real_data_samples"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with rasterio.open(args.world / args.domain / "stack.tif") as src:
        stack, profile = src.read(), src.profile
    with rasterio.open(args.world / args.domain / "mask.tif") as src:
        mask = src.read(1)
    profile = {k: profile[k] for k in ("driver", "crs", "transform")}

    s2 = args.out / "s2_tiles"
    for date in ("pre", "post"):
        bands = [band(stack, f"{date}_{c}") for c in ("blue", "green", "red")]
        dn = np.stack([*bands, nir(stack, date)]) * 10_000.0
        dn = np.clip(np.round(dn), 1, 65535).astype(np.uint16)
        write_tiles(s2 / date, dn, profile, ("B2", "B3", "B4", "B8"), zero_strip=12)
    write_tiles(s2 / "labels", point_labels(mask, 400, rng)[None], profile)

    rgb = args.out / "rgb_tiles"
    post = np.stack([band(stack, f"post_{c}") for c in ("red", "green", "blue")])
    write_tiles(rgb / "post", to_uint8(post), profile, ("red", "green", "blue"))
    write_tiles(rgb / "labels", (mask * 255).astype(np.uint8)[None], profile)

    write_bijie(args.out / "bijie", stack, mask, rng)
    write_landslide4sense(args.out / "landslide4sense", stack, mask, rng)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
