"""What ResU-SENet's squeeze-and-excitation modules weigh: their channel gates, averaged.

An SE module multiplies each channel of its input by a gate in (0, 1) computed from the
whole patch (Hu et al. 2018). Averaged over landslide and over non-landslide patches of a
domain, the gates say which feature channels the module favours for each; the paper reads
its three modules as weighing edge and colour (stem), texture (encoder 1) and semantic
(encoder 2) features. The gates are read with forward hooks on each module's sigmoid, in
one pass that needs no gradient.
"""

from collections.abc import Mapping
from contextlib import ExitStack

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from landslide.models.base import AnySizeSegmenter

#: The two kinds of patch the gates are averaged over.
LANDSLIDE, BACKGROUND = "landslide", "background"


@torch.no_grad()
def excitation_gates(
    network: AnySizeSegmenter, images: Tensor, batch_size: int = 16
) -> dict[str, Tensor]:
    """Each SE module's gates ``[N, channels]`` for ``images`` ``[N, C, H, W]``.

    Keys are the names of :meth:`~landslide.models.base.AnySizeSegmenter.excitation_modules`
    (empty for a network without any).

    Raises:
        TypeError: a named module has no ``scale_activation`` (not torchvision's SE).
    """
    modules = network.excitation_modules()
    gates: dict[str, list[Tensor]] = {name: [] for name in modules}
    network.eval()
    device = next(network.parameters()).device
    with ExitStack() as hooks:
        for name, module in modules.items():
            hooks.callback(_hook(name, module, gates).remove)
        for start in range(0, len(images), batch_size):
            network(images[start : start + batch_size].to(device))
    return {name: torch.cat(values) for name, values in gates.items() if values}


def _hook(name: str, module: nn.Module, gates: dict[str, list[Tensor]]) -> RemovableHandle:
    activation = getattr(module, "scale_activation", None)
    if not isinstance(activation, nn.Module):
        raise TypeError(f"excitation module {name} ({type(module).__name__}) has no gate to read")

    def keep(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        gates[name].append(output.flatten(1).float().cpu())

    return activation.register_forward_hook(keep)


def mean_gates(gates: Mapping[str, Tensor], positive: Tensor, domain: str) -> pd.DataFrame:
    """Gates averaged over landslide and over background patches, one row per channel.

    Args:
        gates: each module's gates ``[N, channels]`` (:func:`excitation_gates`).
        positive: which of the ``N`` patches hold landslide pixels.
        domain: the patches' domain, a column of the table.

    Returns:
        Columns ``domain``, ``module``, ``channel``, ``landslide`` and ``background`` (NaN
        where the patches hold none of that kind) and ``difference`` (landslide minus
        background).
    """
    rows = []
    for name, values in gates.items():
        landslide = _mean(values[positive])
        background = _mean(values[~positive])
        for channel in range(values.shape[1]):
            rows.append(
                {
                    "domain": domain,
                    "module": name,
                    "channel": channel,
                    LANDSLIDE: float(landslide[channel]),
                    BACKGROUND: float(background[channel]),
                }
            )
    table = pd.DataFrame(rows, columns=["domain", "module", "channel", LANDSLIDE, BACKGROUND])
    table["difference"] = table[LANDSLIDE] - table[BACKGROUND]
    return table


def _mean(values: Tensor) -> Tensor:
    if len(values) == 0:
        return torch.full(values.shape[1:], float("nan"))
    return values.mean(0)
