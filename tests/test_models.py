"""Tests of the segmentation networks: the contract every ``conf/model/*.yaml`` network keeps,
then each network's own layout and its building blocks (CPU, small inputs).

The contract tests are parametrised over the model config files, so a new network's config
is tested with no edit here.
"""

import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from landslide.config import CONF_DIR, compose_config, instantiate_config
from landslide.models import CGNet, LANet, MACUNet, ResUNet, ResUSENet
from landslide.models.base import AnySizeSegmenter
from landslide.models.blocks import ResidualUnit, SqueezeExcitation, squeeze_channels
from landslide.models.lanet import AttentionEmbedding, PatchAttention
from landslide.safe_loading import check_trusted, load_checkpoint
from landslide.task import SegmentationTask

MODEL_CONFIGS = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))

#: Inputs of the contract tests, ``(batch, height, width)``: a paper patch and an odd size
#: that is a multiple of no network's stride.
INPUT_SIZES = [(2, 88, 88), (1, 37, 53)]

SMALL_WIDTHS = (8, 16, 32, 64)
RESUNETS = [ResUNet, ResUSENet]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The convolution that sees the input bands (the first one registered)."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def images(cfg: DictConfig, batch: int, height: int, width: int) -> Tensor:
    return torch.rand(batch, len(cfg.data.bands), height, width)


# --- The contract of every network, one config file at a time --------------------------


@pytest.fixture(scope="module", params=MODEL_CONFIGS)
def model_name(request: pytest.FixtureRequest) -> str:
    """The name of a file in ``conf/model/``."""
    return request.param


@pytest.fixture(scope="module")
def model_config(model_name: str, tmp_path_factory: pytest.TempPathFactory) -> DictConfig:
    """``train.py``'s config composed with ``model=<model_name>`` (default bands)."""
    return compose_config([f"model={model_name}"], root_dir=tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def task(model_config: DictConfig) -> SegmentationTask:
    """The task as a run builds it from ``task``, with the network from ``task.net``."""
    torch.manual_seed(0)
    return instantiate_config(model_config.task)


@pytest.fixture(scope="module")
def network(task: SegmentationTask) -> AnySizeSegmenter:
    return task.model


def test_config_builds_a_network_that_keeps_the_contract(
    model_name: str, model_config: DictConfig, network: AnySizeSegmenter
) -> None:
    assert model_config.model.name == model_name  # run names start with it
    assert isinstance(network, AnySizeSegmenter)
    assert first_conv(network).in_channels == len(model_config.data.bands)
    assert model_config.task.net.num_classes == 1
    # A config may name the class by its module path: no export in landslide/models needed.
    cls = type(network)
    check_trusted({"_target_": f"{cls.__module__}.{cls.__name__}"})


def test_input_channels_follow_the_band_set(model_name: str, tmp_path: Path) -> None:
    cfg = compose_config([f"model={model_name}", "bands=post_rgb"], root_dir=tmp_path)
    assert cfg.task.net.in_channels == len(cfg.bands.names) == 3


@pytest.mark.parametrize(("batch", "height", "width"), INPUT_SIZES)
def test_logits_have_the_input_size(
    model_config: DictConfig, network: AnySizeSegmenter, batch: int, height: int, width: int
) -> None:
    network.eval()
    with torch.no_grad():
        out = network(images(model_config, batch, height, width))
    assert out.shape == (batch, 1, height, width)
    assert torch.isfinite(out).all()


def test_gradient_reaches_the_first_layer_and_every_parameter(
    model_config: DictConfig, network: AnySizeSegmenter
) -> None:
    network.train()
    network.zero_grad()
    network(images(model_config, 2, 37, 53)).mean().backward()
    grad = first_conv(network).weight.grad
    assert grad is not None
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    assert all(p.grad is not None for p in network.parameters())
    network.zero_grad()


def test_checkpoint_round_trip_gives_identical_logits(
    model_config: DictConfig, task: SegmentationTask, tmp_path: Path
) -> None:
    """A checkpoint's hyper-parameters and weights, read weights-only as map.py reads them,
    rebuild a network with the same logits."""
    task.train()
    with torch.no_grad():
        task(images(model_config, 2, 37, 53))  # moves the BatchNorm statistics
    path = tmp_path / "task.ckpt"
    checkpoint = {
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
        "pytorch-lightning_version": L.__version__,
    }
    torch.save(checkpoint, path)
    load_checkpoint(path)  # weights and plain values only, the network a class of ours
    torch.manual_seed(1)
    loaded = SegmentationTask.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    task.eval()
    loaded.eval()
    x = images(model_config, 1, 37, 53)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), task.model(x), rtol=0, atol=0)


def test_parameter_count_is_the_one_its_module_records(network: AnySizeSegmenter) -> None:
    """Each network's module docstring records its count for ten bands and one class."""
    count = count_parameters(network)
    module = sys.modules[type(network).__module__]
    assert f"{count:,}" in (module.__doc__ or ""), (
        f"{module.__name__}'s docstring does not record {type(network).__name__}'s "
        f"{count:,} parameters for ten bands and one class"
    )


def test_a_network_without_segment_cannot_be_built() -> None:
    class Incomplete(AnySizeSegmenter):
        total_stride = 4

    with pytest.raises(TypeError, match="segment"):
        Incomplete()


def test_forward_pads_to_the_stride_and_crops_back() -> None:
    class Strided(AnySizeSegmenter):
        total_stride = 4

        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, ...]] = []

        def segment(self, x: Tensor) -> Tensor:
            self.seen.append(tuple(x.shape))
            return x[:, :1]

    net = Strided()
    x = torch.rand(1, 2, 5, 9)
    out = net(x)
    assert net.seen == [(1, 2, 8, 12)]
    torch.testing.assert_close(out, x[:, :1])  # replicate padding at the bottom and right


def test_table10_experiment_sweeps_all_five_networks_on_both_benchmarks(tmp_path: Path) -> None:
    params = OmegaConf.load(CONF_DIR / "experiment" / "table10.yaml").hydra.sweeper.params
    models = params.model.split(",")
    mixes = params.domain_mix.split(",")
    assert sorted(models) == ["cgnet", "lanet", "macunet", "resu_senet", "resunet"]
    assert sorted(mixes) == ["ib700", "j700"]
    # Every model with one mix and every mix with one model: the run name joins the two.
    settings = {(model, mixes[0]) for model in models} | {(models[0], mix) for mix in mixes}
    for model, mix in sorted(settings):
        cfg = compose_config(
            ["experiment=table10", f"model={model}", f"domain_mix={mix}"], root_dir=tmp_path
        )
        assert cfg.logger.run_name == f"{model}-{mix}-seed42"


# --- ResU-Net and ResU-SENet --------------------------------------------------------------


def se_parameters(channels: int, hidden: int) -> int:
    """Two fully connected layers with bias: channels -> hidden -> channels."""
    return (channels * hidden + hidden) + (hidden * channels + channels)


@pytest.mark.parametrize("network_class", RESUNETS)
def test_output_is_the_head_logit_without_final_activation(network_class: type[ResUNet]) -> None:
    model = network_class(widths=SMALL_WIDTHS).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-3.0)
        out = model(torch.rand(1, 10, 16, 16))
    torch.testing.assert_close(out, torch.full_like(out, -3.0))


def test_se_modules_are_the_whole_difference_between_resunet_and_resu_senet() -> None:
    difference = count_parameters(ResUSENet()) - count_parameters(ResUNet())
    # SE modules on the stem, encoder-1 and encoder-2 skips, r = 16: hidden 4, 8 and 16.
    expected_se = sum(se_parameters(c, c // 16) for c in (64, 128, 256))
    assert expected_se == 11_228
    assert difference == expected_se


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


def test_table_iii_wide_decoder_reading_builds_and_runs() -> None:
    torch.manual_seed(0)
    model = ResUSENet(decoder_widths=(256, 256, 128)).eval()
    assert [u.conv1.in_channels for u in model.decoder] == [512 + 256, 256 + 128, 256 + 64]
    assert [u.conv2.out_channels for u in model.decoder] == [256, 256, 128]
    assert count_parameters(model) == 9_567_581
    with torch.no_grad():
        out = model(torch.rand(1, 10, 40, 40))
    assert out.shape == (1, 1, 40, 40)


@pytest.mark.parametrize("network_class", RESUNETS)
@pytest.mark.parametrize("size", [(16, 16), (13, 19), (5, 3)])
def test_small_widths_train_on_any_size(
    network_class: type[ResUNet], size: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    model = network_class(in_channels=4, num_classes=2, widths=SMALL_WIDTHS)
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


# --- Building blocks ----------------------------------------------------------------------


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


# --- Table X's comparison networks: CGNet, LANet and MACU-Net -----------------------------


def test_parameter_counts_match_the_authors_code_in_their_configurations() -> None:
    # Yang et al. on CGNet: "less than 2 M parameters" (505,852 with ten bands, one class).
    assert count_parameters(CGNet()) < 2_000_000
    # CGNet M3N21 for Cityscapes (3 bands, 19 classes): the official count, "< 0.5 M".
    assert count_parameters(CGNet(in_channels=3, num_classes=19)) == 496_306
    # MACU-Net for GID / WHDLD (3 bands, 6 classes): the official count, "5.15 M".
    assert count_parameters(MACUNet(in_channels=3, num_classes=6)) == 5_151_734
    # LANet (3 bands, 6 classes): the official 23,810,650 less the FCN classifier that the
    # official model builds but never uses (conv 128->128 + BN + conv 128->6).
    unused_fcn_classifier = (128 * 128 + 128) + 2 * 128 + (128 * 6 + 6)
    assert count_parameters(LANet(in_channels=3, num_classes=6)) == (
        23_810_650 - unused_fcn_classifier
    )


def test_cgnet_is_the_m3n21_configuration() -> None:
    model = CGNet()
    assert len(model.stage2) + 1 == 3  # M, counting the down-sampling block
    assert len(model.stage3) + 1 == 21  # N
    assert {b.surrounding.dilation for b in [model.stage2_down, *model.stage2]} == {(2, 2)}
    assert {b.surrounding.dilation for b in [model.stage3_down, *model.stage3]} == {(4, 4)}
    # f_loc and f_sur are channel-wise; f_glo squeezes 64 / 8 and 128 / 16 to 8 units.
    block = model.stage3[0]
    assert block.local.groups == block.local.in_channels == 64
    assert model.stage2[0].global_context.fc1.out_channels == 8
    assert block.global_context.fc1.out_channels == 8
    # Input injection: the ten bands join stages 2 and 3.
    assert model.stage2_down.reduce[0].in_channels == 32 + 10
    assert model.stage3_down.reduce[0].in_channels == 128 + 10


def test_lanet_and_macunet_outputs_are_logits_without_final_activation() -> None:
    """With the classifier weights zeroed, the output is the classifier bias, unsquashed."""
    lanet = LANet().eval()
    macunet = MACUNet().eval()
    with torch.no_grad():
        for conv, bias in [
            (lanet.high_classifier, -1.0),
            (lanet.low_classifier, -2.0),
            (macunet.head, -3.0),
        ]:
            conv.weight.zero_()
            conv.bias.fill_(bias)
        for model in (lanet, macunet):
            out = model(torch.rand(1, 10, 40, 40))
            torch.testing.assert_close(out, torch.full_like(out, -3.0))


def test_lanet_patch_attention_uses_a_grid_at_the_mapping_window() -> None:
    """At conf/mapping/map.yaml's 256-px window the PAMs average over patch grids: the low
    level (64 px at stride 4) over 3 x 3 patches of 20 px, the high level (8 px at stride 32)
    over 2 x 2 patches of 4 px."""
    model = LANet().eval()
    pooled: list[tuple[int, ...]] = []
    for pam in (model.low_attention, model.high_attention):
        pam.gate.register_forward_hook(lambda _m, args, _out: pooled.append(tuple(args[0].shape)))
    with torch.no_grad():
        out = model(torch.rand(1, 10, 256, 256))
    assert out.shape == (1, 1, 256, 256)
    assert sorted(pooled) == [(1, 64, 3, 3), (1, 128, 2, 2)]


def test_patch_attention_is_local_and_falls_back_to_one_patch() -> None:
    torch.manual_seed(0)
    pam = PatchAttention(16, reduction=8, patch_size=4).eval()
    pooled: list[tuple[int, ...]] = []
    pam.gate.register_forward_hook(lambda _m, args, _out: pooled.append(tuple(args[0].shape)))
    x = torch.rand(1, 16, 12, 8)
    with torch.no_grad():
        out = pam(x)
        pam(torch.rand(1, 16, 3, 3))
    assert pooled == [(1, 16, 3, 2), (1, 16, 1, 1)]  # a 3 x 2 grid; one patch if too small
    assert out.shape == x.shape
    with torch.no_grad():
        pam.gate[-2].weight.zero_()
        pam.gate[-2].bias.zero_()
        torch.testing.assert_close(pam(x), 1.5 * x)  # x * sigmoid(0) + x


def test_attention_embedding_does_not_train_the_high_level_branch() -> None:
    aem = AttentionEmbedding(32, 8)
    high = torch.rand(2, 32, 3, 3, requires_grad=True)
    low = torch.rand(2, 8, 12, 12, requires_grad=True)
    out = aem(high, low)
    assert out.shape == low.shape
    out.sum().backward()
    assert high.grad is None  # detached, as in the authors' code
    assert low.grad is not None
    assert aem.gate[1][0].weight.grad is not None


def test_macunet_fuses_five_tensors_per_level_with_channel_attention() -> None:
    model = MACUNet()
    widths = (16, 32, 64, 128)
    assert [f.project.in_channels for f in model.fusion] == [5 * w for w in widths]
    assert [f.project.out_channels for f in model.fusion] == [2 * w for w in widths]
    assert [len(path) for path in model.down_paths] == [3, 2, 1]
    assert [len(path) for path in model.up_paths] == [1, 2, 3, 4]
