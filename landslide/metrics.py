"""The paper's five pixel metrics: one definition of their names and of what computes them.

The task logs them (``val/<name>``, ``test/<domain>/<name>``), the training summary prints
them, run lifecycle checks a run logged them all, and the report tabulates them beside the
paper's; all read :data:`METRICS`. Modules that only need the names (the report, the config
check) import this without importing torch: the torchmetrics classes are looked up when a
collection is built.
"""

from typing import TYPE_CHECKING

from landslide.layout import IGNORED

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

#: The torchmetrics class of each metric, by the name it is logged under, in the paper's
#: column order (Tables IV-X).
METRIC_CLASSES: dict[str, str] = {
    "precision": "BinaryPrecision",
    "recall": "BinaryRecall",
    "f1": "BinaryF1Score",
    "mcc": "BinaryMatthewsCorrCoef",
    "iou": "BinaryJaccardIndex",
}
#: The metric names, in the paper's column order.
METRICS: tuple[str, ...] = tuple(METRIC_CLASSES)


def landslide_metrics(threshold: float = 0.5, ignore_index: int = IGNORED) -> "MetricCollection":
    """The paper's five pixel metrics for the landslide class.

    Target pixels equal to ``ignore_index`` (unlabelled, :data:`~landslide.layout.IGNORED`)
    count for nothing.
    """
    import torchmetrics.classification as classification
    from torchmetrics import MetricCollection

    options = {"threshold": threshold, "ignore_index": ignore_index}
    return MetricCollection(
        {name: getattr(classification, cls)(**options) for name, cls in METRIC_CLASSES.items()}
    )
