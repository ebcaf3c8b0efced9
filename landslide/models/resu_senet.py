"""ResU-SENet: ResU-Net with squeeze-and-excitation on the skip connections.

Yang et al., "A Generalized Deep Learning-Based Method for Rapid Co-Seismic Landslide
Mapping", IEEE JSTARS 2024, Section III-A, Fig. 3 and Table III.

Our reading of Table III, which is garbled in print, implemented here: the
ResU-Net of Zhang, Liu & Wang (2018) with widths 64 @ 88, 128 @ 44, 256 @ 22 and a
512-channel bridge @ 11 (three stride-2 steps), and decoder residual units of 256, 128 and
64 channels (the reversed encoder widths). One SE module (Hu et al. 2018, r = 16) sits on
each skip tensor, as the text places them: after the stem (edge and colour), after encoder
unit 1 (texture) and after encoder unit 2 (semantics). This reproduces the table's first
decoder stage exactly (concat 512 + 256 = 768 at 22 px, then 256 channels).

Alternative reading: the table lists the two finer decoder stages at double width
(concat 768 then 256 channels at 44 px, concat 384 then 128 at 88 px). Its decoder widths
are one argument away, ``ResUSENet(decoder_widths=(256, 256, 128))``; the concatenations
are then 768, 384 and 320 channels, since the skips keep the encoder widths (128 and 64)
and no skip widths consistent with the table's encoder rows give its 768 and 384.

Parameter counts, 10 input bands and 1 output class:

- ``ResUSENet()``: 8,235,293 (``ResUNet()``: 8,224,065; the three SE modules add 11,228:
  580 at 64, 2,184 at 128 and 8,464 at 256 channels).
- ``ResUSENet(decoder_widths=(256, 256, 128))``: 9,567,581.
"""

from collections.abc import Sequence

from landslide.models.resunet import ResUNet


class ResUSENet(ResUNet):
    """ResU-SENet (Yang et al. 2024): :class:`ResUNet` with SE attention on the three skips.

    Returns LOGITS (no sigmoid), for any input size; see :class:`ResUNet`.

    Args:
        in_channels: input bands (10 in the paper).
        num_classes: output channels (1 for binary landslide mapping).
        widths: channels of the stem, encoder unit 1, encoder unit 2 and the bridge.
        decoder_widths: channels of the three decoder units, coarsest first; ``None`` means
            the reversed encoder widths. ``(256, 256, 128)`` gives Table III's wider decoder.
        se_reduction: reduction ratio ``r`` of the SE modules.
    """

    def __init__(
        self,
        in_channels: int = 10,
        num_classes: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512),
        decoder_widths: Sequence[int] | None = None,
        se_reduction: int = 16,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            num_classes=num_classes,
            widths=widths,
            decoder_widths=decoder_widths,
            skip_attention=True,
            se_reduction=se_reduction,
        )
