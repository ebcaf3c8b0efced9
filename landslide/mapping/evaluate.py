"""How good a landslide map is against a reference: pixel and object-level metrics.

Pixel metrics are the paper's five (:func:`landslide.metrics.landslide_metrics`, torchmetrics)
over every labelled pixel of the scene. Mapping agencies also count landslides: the share
of reference landslides the map detects and the share of mapped polygons that are real,
both by size class, under an overlap rule. Polygons of each side are matched through a
spatial index, so the cost grows with the number of landslides, not the scene's size.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

#: Overlap rules: ``any`` counts a polygon as matched when it shares any area with the
#: other side; ``share`` when at least ``min_share`` of its area is covered by it.
RULES = ("any", "share")


@dataclass(frozen=True)
class MatchRule:
    """When a polygon counts as matched by the other side's polygons.

    Attributes:
        rule: ``any`` or ``share``.
        min_share: least covered share of a polygon's area, for ``share``.
    """

    rule: str = "any"
    min_share: float = 0.5

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"evaluation.match={self.rule!r}: choose one of {', '.join(RULES)}")
        if not 0.0 < self.min_share <= 1.0:
            raise ValueError(f"evaluation.min_share={self.min_share}: give a share in (0, 1]")

    def matched(self, covered: np.ndarray, area: np.ndarray) -> np.ndarray:
        """Which polygons are matched, from the area of each that the other side covers."""
        if self.rule == "any":
            return covered > 0
        return covered >= self.min_share * area - 1e-6


def covered_area(polygons: gpd.GeoSeries, others: gpd.GeoSeries) -> np.ndarray:
    """The area of each polygon covered by the union of ``others`` (same CRS)."""
    covered = np.zeros(len(polygons))
    if len(polygons) == 0 or len(others) == 0:
        return covered
    left, right = others.sindex.query(polygons.values, predicate="intersects")
    geoms, other_geoms = polygons.values, others.values
    for i in np.unique(left):
        touching = other_geoms[right[left == i]]
        pieces = shapely.intersection(geoms[i], touching)
        covered[i] = shapely.union_all(pieces).area
    return covered


def size_class_names(bounds: Sequence[float]) -> list[str]:
    """Metric-name labels of the size classes cut at ``bounds`` (m²)."""
    edges = [0, *bounds]
    names = [f"area_{int(a)}_{int(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [*names, f"area_ge_{int(edges[-1])}"]


def object_metrics(
    predicted: gpd.GeoDataFrame,
    reference: gpd.GeoDataFrame,
    rule: MatchRule,
    size_classes: Sequence[float] = (1_000, 10_000, 100_000),
    max_ignored_share: float = 0.5,
) -> dict[str, float]:
    """Object-level detection metrics of a map against reference landslides.

    Args:
        predicted: the map's polygons (an ``ignored_share`` column leaves out polygons
            lying mostly on unlabelled reference ground: they can be neither right nor
            wrong).
        reference: the reference landslide polygons, in the same CRS.
        rule: when a polygon counts as matched.
        size_classes: upper bounds (m²) of the size classes, ascending.
        max_ignored_share: predicted polygons with more unlabelled ground are left out.

    Returns:
        ``object_recall`` (share of reference landslides detected), ``object_precision``
        (share of mapped polygons that are real), ``object_f1``, the counts, the mapped and
        reference areas (km²), and recall and precision per size class
        (``object_recall/area_1000_10000``...; NaN when a class is empty).
    """
    if "ignored_share" in predicted:
        predicted = predicted[predicted["ignored_share"] <= max_ignored_share]
    reference = reference[reference.geometry.notna() & ~reference.geometry.is_empty]
    reference = reference.to_crs(predicted.crs) if predicted.crs else reference
    ref_area = reference.geometry.area.to_numpy()
    pred_area = predicted.geometry.area.to_numpy()
    detected = rule.matched(covered_area(reference.geometry, predicted.geometry), ref_area)
    real = rule.matched(covered_area(predicted.geometry, reference.geometry), pred_area)
    recall = _share(detected)
    precision = _share(real)
    metrics = {
        "object_recall": recall,
        "object_precision": precision,
        "object_f1": 2 * recall * precision / (recall + precision)
        if recall + precision > 0
        else 0.0,
        "reference_count": float(len(reference)),
        "detected_count": float(detected.sum()),
        "mapped_count": float(len(predicted)),
        "true_mapped_count": float(real.sum()),
        "mapped_area_km2": float(pred_area.sum() / 1e6),
        "reference_area_km2": float(ref_area.sum() / 1e6),
    }
    edges = np.asarray([0, *size_classes, np.inf])
    for i, name in enumerate(size_class_names(size_classes)):
        in_ref = (ref_area >= edges[i]) & (ref_area < edges[i + 1])
        in_pred = (pred_area >= edges[i]) & (pred_area < edges[i + 1])
        metrics[f"object_recall/{name}"] = _share(detected[in_ref])
        metrics[f"object_precision/{name}"] = _share(real[in_pred])
    return metrics


def _share(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else float("nan")
