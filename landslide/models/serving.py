"""A trained network as it is served: normalised bands in, landslide probability out."""

from torch import Tensor, nn


class ProbabilityModel(nn.Module):
    """Wrap a segmentation network so that it returns probabilities, not logits.

    The form the logged MLflow model takes (:mod:`landslide.logged_model`): MLflow's PyTorch
    flavour calls the module on the input array as is, so the sigmoid and the squeezed
    channel belong to the module.

    Args:
        net: a network of :mod:`landslide.models` (one output channel of logits).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        """Landslide probability [N, H, W] of normalised images [N, bands, H, W]."""
        return self.net(image).squeeze(1).sigmoid()
