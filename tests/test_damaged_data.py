"""Damaged rasters: the default world regenerates them; prepared data fails in one line."""

import json
import logging
import os
from pathlib import Path

import pytest
from conftest import write_domain
from omegaconf import OmegaConf

from landslide.data.datamodule import LandslideDataModule
from landslide.errors import DataError
from landslide.layout import DomainFiles
from landslide.world import ensure_world

CONF = Path(__file__).resolve().parents[1] / "conf" / "domain"
DOMAINS = {"alpha": {"role": "known"}, "beta": {"role": "known"}, "gamma": {"role": "unknown"}}


def small_world(root: Path) -> DomainFiles:
    domain = OmegaConf.load(CONF / "palu.yaml")
    return ensure_world(root, {"palu": domain}, {"palu": domain.world}, 64, seed=1)["palu"]


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def test_a_damaged_world_domain_is_generated_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = small_world(tmp_path)
    record = json.loads((files.root / "world.json").read_text())
    assert set(record["files"]) == {"stack.tif", "mask.tif", "inventory.gpkg", "stats.json"}
    assert record["files"]["stack.tif"]["size"] == files.stack.stat().st_size
    original = {p.name: p.read_bytes() for p in files.root.iterdir()}

    truncate(files.stack)
    with caplog.at_level(logging.WARNING, "landslide.world"):
        small_world(tmp_path)
    assert "palu is damaged (stack.tif has" in caplog.text
    assert {p.name: p.read_bytes() for p in files.root.iterdir()} == original

    # Same size, other bytes: only the checksum tells.
    data = bytearray(files.mask.read_bytes())
    data[-100:] = bytes(100)
    files.mask.write_bytes(data)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "landslide.world"):
        small_world(tmp_path)
    assert "mask.tif differs from its sha256 checksum" in caplog.text
    assert files.mask.read_bytes() == original["mask.tif"]

    # Intact: reused without writing.
    mtime = files.stack.stat().st_mtime_ns
    small_world(tmp_path)
    assert files.stack.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".*"))


def test_a_world_cached_without_checksums_is_generated_once(tmp_path: Path) -> None:
    files = small_world(tmp_path)
    record_path = files.root / "world.json"
    record = json.loads(record_path.read_text())
    del record["files"]
    record_path.write_text(json.dumps(record, indent=2))
    mtime = files.stack.stat().st_mtime_ns
    small_world(tmp_path)
    assert "files" in json.loads(record_path.read_text())
    assert files.stack.stat().st_mtime_ns != mtime
    mtime = files.stack.stat().st_mtime_ns
    small_world(tmp_path)
    assert files.stack.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("name", "damage"),
    [("stack.tif", "truncated"), ("mask.tif", "truncated"), ("stack.tif", "not a GeoTIFF")],
)
def test_a_damaged_prepared_raster_gives_one_line_at_setup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, damage: str
) -> None:
    root = tmp_path / "prepared"
    for i, domain in enumerate(DOMAINS):
        write_domain(root, domain, seed=i)
    path = root / "beta" / name
    if damage == "truncated":
        truncate(path)
    else:
        path.write_text("not a raster")
    datamodule = LandslideDataModule(
        root, DOMAINS, {"alpha": 10, "beta": 10}, patch_size=32, pool_size=60, unknown_pool_size=20
    )
    datamodule.prepare_data()  # the files are there: nothing is read yet
    with caplog.at_level(logging.INFO), pytest.raises(DataError) as err:
        datamodule.setup()
    message = str(err.value)
    assert message.startswith(f"{path} is damaged or truncated (GDAL: ")
    assert message.endswith(
        "); re-run prepare.py for this domain (a default-world domain: "
        "delete its folder and it is generated again)"
    )
    assert "\n" not in message
    if damage != "truncated":
        assert "not recognized as being in a supported file format" in message
    # GDAL's own error lines are not logged on top of the one line.
    assert not [r for r in caplog.records if r.name.startswith("rasterio")]


def test_a_damaged_statistics_file_gives_one_line(tmp_path: Path) -> None:
    root = tmp_path / "prepared"
    for i, domain in enumerate(DOMAINS):
        write_domain(root, domain, seed=i)
    truncate(root / "alpha" / "stats.json")
    datamodule = LandslideDataModule(
        root, DOMAINS, {"alpha": 10}, patch_size=32, pool_size=60, unknown_pool_size=20
    )
    with pytest.raises(DataError, match="stats.json: not a band statistics file") as err:
        datamodule.setup()
    assert "\n" not in str(err.value)
