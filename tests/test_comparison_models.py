"""Table X's comparison networks: CGNet, LANet and MACU-Net (CPU, small batches)."""

from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from landslide.config import CONF_DIR, compose_config
from landslide.models import CGNet, LANet, MACUNet
from landslide.models.lanet import AttentionEmbedding, PatchAttention
from landslide.task import SegmentationTask
from landslide.training import build

NETWORKS: dict[str, type[nn.Module]] = {"cgnet": CGNet, "lanet": LANet, "macunet": MACUNet}

#: Parameters for ten bands and one class, as documented in each module's docstring.
PARAMETERS_10_BANDS_1_CLASS = {"cgnet": 505_852, "lanet": 23_814_090, "macunet": 5_153_329}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def first_layer_weight(model: nn.Module) -> torch.Tensor:
    """The weight of the convolution that sees the input bands."""
    if isinstance(model, CGNet):
        return model.stage1[0][0].weight
    if isinstance(model, LANet):
        return model.stem[0].weight
    assert isinstance(model, MACUNet)
    return model.encoder[0][0].square.weight


@pytest.fixture(scope="module")
def networks() -> dict[str, nn.Module]:
    """One default network (ten bands, one class) of each kind, built once."""
    torch.manual_seed(0)
    return {name: network() for name, network in NETWORKS.items()}


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("size", [(88, 88), (97, 101)])
def test_output_is_one_logit_map_at_the_input_size(
    networks: dict[str, nn.Module], name: str, size: tuple[int, int]
) -> None:
    model = networks[name].eval()
    with torch.no_grad():
        out = model(torch.rand(2, 10, *size))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_mapping_window_size_works(networks: dict[str, nn.Module], name: str) -> None:
    model = networks[name].eval()
    with torch.no_grad():
        out = model(torch.rand(1, 10, 512, 512))
    assert out.shape == (1, 1, 512, 512)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_gradient_reaches_the_first_layer_and_every_parameter(
    networks: dict[str, nn.Module], name: str
) -> None:
    model = networks[name].train()
    model.zero_grad()
    model(torch.rand(2, 10, 88, 88)).mean().backward()
    grad = first_layer_weight(model).grad
    assert grad is not None
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()


def test_parameter_counts_for_ten_bands_and_one_class(networks: dict[str, nn.Module]) -> None:
    counts = {name: count_parameters(model) for name, model in networks.items()}
    assert counts == PARAMETERS_10_BANDS_1_CLASS
    assert counts["cgnet"] < 2_000_000  # Yang et al.: "less than 2 M parameters"


def test_parameter_counts_match_the_authors_code_in_their_configurations() -> None:
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


@pytest.mark.parametrize("name", NETWORKS)
def test_network_trains_and_tests_through_the_task(tmp_path: Path, name: str) -> None:
    """The composed model config builds the network inside the one SegmentationTask, which
    takes a training step, validates and tests on random tensors; its hyper-parameters
    rebuild the same network."""
    cfg = compose_config([f"model={name}"], root_dir=tmp_path)
    assert cfg.model.name == name
    task: SegmentationTask = build(cfg.task, test_domains=["iburi"])
    assert isinstance(task.model, NETWORKS[name])

    torch.manual_seed(0)
    batches = [{"image": torch.rand(2, 10, 88, 88), "mask": (torch.rand(2, 88, 88) > 0.7).float()}]
    loader = DataLoader(batches, batch_size=None)
    before = first_layer_weight(task.model).detach().clone()
    trainer = L.Trainer(
        accelerator="cpu",
        fast_dev_run=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, train_dataloaders=loader, val_dataloaders=loader)
    assert not torch.equal(first_layer_weight(task.model), before)  # Adam took a step
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    trainer.test(task, dataloaders=[loader], verbose=False)
    assert {"test/iburi/f1", "test/iburi/loss"} <= set(trainer.callback_metrics)

    rebuilt = SegmentationTask(**task.hparams)
    rebuilt.load_state_dict(task.state_dict())
    task.eval()
    rebuilt.eval()
    image = batches[0]["image"]
    torch.testing.assert_close(rebuilt(image), task(image))


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("bands", ["paper", "no_dem", "post_rgb"])
def test_input_channels_follow_the_band_set(tmp_path: Path, name: str, bands: str) -> None:
    cfg = compose_config([f"model={name}", f"bands={bands}"], root_dir=tmp_path)
    assert cfg.model.net.in_channels == len(cfg.bands.names)
    assert cfg.task.net.num_classes == 1


def test_table10_experiment_sweeps_all_five_networks_on_both_benchmarks(tmp_path: Path) -> None:
    params = OmegaConf.load(CONF_DIR / "experiment" / "table10.yaml").hydra.sweeper.params
    models = params.model.split(",")
    mixes = params.domain_mix.split(",")
    assert sorted(models) == ["cgnet", "lanet", "macunet", "resu_senet", "resunet"]
    assert sorted(mixes) == ["ib700", "j700"]
    for model in models:
        for mix in mixes:
            cfg = compose_config(
                ["experiment=table10", f"model={model}", f"domain_mix={mix}"], root_dir=tmp_path
            )
            assert cfg.logger.run_name == f"{model}-{mix}-seed42"
