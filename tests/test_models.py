"""Tests of the segmentation networks and their building blocks (CPU, small inputs)."""

import pytest
import torch
from torch import nn

from landslide.models import ResUNet, ResUSENet
from landslide.models.blocks import ResidualUnit, SqueezeExcitation, squeeze_channels

SMALL_WIDTHS = (8, 16, 32, 64)
NETWORKS = [ResUNet, ResUSENet]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def se_parameters(channels: int, hidden: int) -> int:
    """Two fully connected layers with bias: channels -> hidden -> channels."""
    return (channels * hidden + hidden) + (hidden * channels + channels)


@pytest.mark.parametrize("network", NETWORKS)
def test_default_network_maps_88px_patches_to_88px_logits(network: type[ResUNet]) -> None:
    torch.manual_seed(0)
    model = network().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 10, 88, 88))
    assert out.shape == (2, 1, 88, 88)


@pytest.mark.parametrize("network", NETWORKS)
def test_output_is_the_head_logit_without_final_activation(network: type[ResUNet]) -> None:
    model = network(widths=SMALL_WIDTHS).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-3.0)
        out = model(torch.rand(1, 10, 16, 16))
    torch.testing.assert_close(out, torch.full_like(out, -3.0))


@pytest.mark.parametrize("network", NETWORKS)
def test_input_not_multiple_of_8_keeps_its_size(network: type[ResUNet]) -> None:
    torch.manual_seed(0)
    model = network().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 10, 97, 101))
    assert out.shape == (1, 1, 97, 101)
    assert torch.isfinite(out).all()


def test_parameter_counts_of_default_networks() -> None:
    resunet = count_parameters(ResUNet())
    resu_senet = count_parameters(ResUSENet())
    assert resunet == 8_224_065
    assert resu_senet == 8_235_293
    # SE modules on the stem, encoder-1 and encoder-2 skips, r = 16: hidden 4, 8 and 16.
    expected_se = sum(se_parameters(c, c // 16) for c in (64, 128, 256))
    assert expected_se == 11_228
    assert resu_senet - resunet == expected_se


def test_resunet_has_no_attention_and_resu_senet_has_se_on_every_skip() -> None:
    plain = ResUNet(widths=SMALL_WIDTHS)
    attended = ResUSENet(widths=SMALL_WIDTHS)
    assert all(isinstance(m, nn.Identity) for m in plain.skip_attention)
    assert [m.fc1.in_channels for m in attended.skip_attention] == list(SMALL_WIDTHS[:3])
    assert all(isinstance(m, SqueezeExcitation) for m in attended.skip_attention)


def test_se_modules_see_the_stem_and_encoder_outputs() -> None:
    """SE sits on the skips: 8 ch @ 32 px (stem), 16 @ 16 (encoder 1), 32 @ 8 (encoder 2)."""
    torch.manual_seed(0)
    model = ResUSENet(widths=SMALL_WIDTHS)
    seen: list[tuple[int, ...]] = []
    for module in model.skip_attention:
        module.register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    model(torch.rand(1, 10, 32, 32))
    assert seen == [(1, 8, 32, 32), (1, 16, 16, 16), (1, 32, 8, 8)]


def test_skip_attention_changes_the_output() -> None:
    """Closing every SE gate (sigmoid(-inf) = 0) must change the prediction."""
    torch.manual_seed(0)
    model = ResUSENet(widths=SMALL_WIDTHS).eval()
    x = torch.rand(1, 10, 16, 16)
    with torch.no_grad():
        before = model(x)
        for se in model.skip_attention:
            se.fc2.weight.zero_()
            se.fc2.bias.fill_(-1e4)
        after = model(x)
    assert not torch.allclose(before, after, atol=1e-4)


def test_gradient_reaches_the_first_convolution() -> None:
    torch.manual_seed(0)
    model = ResUSENet(widths=SMALL_WIDTHS)
    model(torch.rand(2, 10, 24, 24)).mean().backward()
    grad = model.stem.conv1.weight.grad
    assert grad is not None
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def test_squeeze_excitation_rescales_channels_by_the_hand_computed_gate() -> None:
    torch.manual_seed(0)
    se = SqueezeExcitation(channels=3, reduction=16, min_squeeze_channels=2)
    assert se.fc1.out_channels == 2  # 3 // 16 = 0, raised to the floor
    with torch.no_grad():
        se.fc1.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]]).view(2, 3, 1, 1))
        se.fc1.bias.copy_(torch.tensor([0.0, -1.0]))
        se.fc2.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]).view(3, 2, 1, 1))
        se.fc2.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    # Channel means 1, 2 and 3 (each channel constant over its 2 x 2 plane).
    x = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    # Hidden: relu([1 - 3, 0.5 * 6 - 1]) = [0, 2]; gate = sigmoid([0, 4, -2 + 1]).
    gate = torch.sigmoid(torch.tensor([0.0, 4.0, -1.0])).view(1, 3, 1, 1)
    out = se(x)
    torch.testing.assert_close(out, x * gate)
    assert not torch.allclose(out, x)


def test_squeeze_channels_uses_reduction_with_a_floor() -> None:
    assert squeeze_channels(256, 16) == 16
    assert squeeze_channels(64, 16) == 4
    assert squeeze_channels(8, 16) == 4
    assert SqueezeExcitation(8).fc1.out_channels == 4


def test_residual_unit_shapes_and_shortcut() -> None:
    same = ResidualUnit(16, 16)
    down = ResidualUnit(16, 32, stride=2)
    assert isinstance(same.shortcut, nn.Identity)
    assert isinstance(down.shortcut, nn.Sequential)
    x = torch.rand(1, 16, 11, 11)
    assert same(x).shape == (1, 16, 11, 11)
    assert down(x).shape == (1, 32, 6, 6)


def test_residual_unit_with_zero_residual_branch_is_the_identity() -> None:
    unit = ResidualUnit(4, 4)
    with torch.no_grad():
        unit.conv2.weight.zero_()
    x = torch.rand(2, 4, 5, 5)
    torch.testing.assert_close(unit(x), x)


def test_table_iii_wide_decoder_reading_builds_and_runs() -> None:
    torch.manual_seed(0)
    model = ResUSENet(decoder_widths=(256, 256, 128)).eval()
    assert [u.conv1.in_channels for u in model.decoder] == [512 + 256, 256 + 128, 256 + 64]
    assert [u.conv2.out_channels for u in model.decoder] == [256, 256, 128]
    assert count_parameters(model) == 9_567_581
    with torch.no_grad():
        out = model(torch.rand(1, 10, 88, 88))
    assert out.shape == (1, 1, 88, 88)


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("size", [(16, 16), (13, 19), (5, 3)])
def test_small_widths_train_on_any_size(network: type[ResUNet], size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = network(in_channels=4, num_classes=2, widths=SMALL_WIDTHS)
    out = model(torch.rand(2, 4, *size))
    assert out.shape == (2, 2, *size)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_default_decoder_widths_are_the_reversed_encoder_widths() -> None:
    model = ResUNet(widths=SMALL_WIDTHS)
    assert model.decoder_widths == (32, 16, 8)
    assert model.head.in_channels == 8


@pytest.mark.parametrize(
    ("widths", "decoder_widths"), [((8, 16, 32), None), (SMALL_WIDTHS, (32, 16))]
)
def test_wrong_number_of_widths_is_rejected(
    widths: tuple[int, ...], decoder_widths: tuple[int, ...] | None
) -> None:
    with pytest.raises(ValueError, match="widths"):
        ResUNet(widths=widths, decoder_widths=decoder_widths)
