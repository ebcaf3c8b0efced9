"""explain.py: Grad-CAM heatmaps, SE gates and band importance, measured and logged."""

from pathlib import Path

import entry_points
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from landslide.bands import BANDS
from landslide.config import CONF_DIR, compose_config
from landslide.data.sampling import Patch
from landslide.explain.band_importance import ablation_drops, band_means, integrated_gradients
from landslide.explain.command import run_explain
from landslide.explain.errors import ExplainError
from landslide.explain.excitation import excitation_gates, mean_gates
from landslide.explain.gradcam import landslide_cams
from landslide.explain.samples import balanced_indices
from landslide.explain.subjects import load_subject
from landslide.models import CGNet, LANet, MACUNet, ResUNet, ResUSENet
from landslide.models.base import AnySizeSegmenter

USED = 2  # the one band the toy network reads


class OneBandNetwork(AnySizeSegmenter):
    """Logit 10 * (band 2 - 0.6): a landslide wherever band 2 exceeds 0.6; no other band
    reaches the output (their weights are zero), so replacing one cannot change a pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(len(BANDS), 1, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, USED] = 10.0
            self.conv.bias.fill_(-6.0)

    def segment(self, x: Tensor) -> Tensor:
        return self.conv(x)


def toy_patches(n: int = 6, size: int = 24) -> tuple[Tensor, Tensor]:
    images = torch.rand(n, len(BANDS), size, size, generator=torch.Generator().manual_seed(0))
    masks = (images[:, USED] > 0.6).to(torch.uint8)
    masks[:, :2] = 255  # ignored rows count for nothing
    return images, masks


def test_band_ablation_drops_nothing_for_an_ignored_band_and_all_for_the_used_one() -> None:
    network = OneBandNetwork().eval()
    images, masks = toy_patches()
    base, drops = ablation_drops(
        lambda x: network(x)[:, 0].sigmoid(), images, masks, threshold=0.5, batch_size=4
    )
    assert base == 1.0  # the network is the labelling rule
    # At its mean (about 0.5) band 2 gives logit -1 everywhere: no landslide, F1 0.
    assert band_means(images)[USED] == pytest.approx(0.5, abs=0.01)
    assert drops[USED] == 1.0
    others = [b for b in range(len(BANDS)) if b != USED]
    assert drops[others].tolist() == [0.0] * len(others)


def test_integrated_gradients_attribute_the_score_to_the_used_band_only() -> None:
    network = OneBandNetwork().eval()
    images, masks = toy_patches(n=3)
    regions = masks == 1
    attributions, errors = integrated_gradients(
        lambda x: network(x)[:, 0], images, regions, band_means(images), n_steps=8
    )
    assert attributions.shape == (3, len(BANDS))
    others = [b for b in range(len(BANDS)) if b != USED]
    assert attributions[:, others].abs().max() == 0.0
    assert (attributions[:, USED] > 0).all()  # the landslide pixels are above the mean
    # Completeness: the band sums equal the score's change from the baseline (linear model).
    assert errors.abs().max() < 1e-4


def test_gradcam_heatmap_has_the_patch_shape_and_shows_where() -> None:
    torch.manual_seed(0)
    network = ResUSENet(widths=(8, 16, 32, 64)).eval()
    images = torch.rand(3, len(BANDS), 44, 44)  # not a multiple of the stride 8
    regions = torch.zeros(3, 44, 44, dtype=torch.bool)
    regions[:, 10:20, 5:30] = True
    heatmaps = landslide_cams(network, images, regions, batch_size=2)
    assert heatmaps.shape == (3, 44, 44) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    assert all(h.std() > 0.01 for h in heatmaps)  # not constant


@pytest.mark.parametrize(
    "network",
    [
        ResUNet(widths=(8, 16, 32, 64)),
        CGNet(stage2_blocks=1, stage3_blocks=1),
        LANet(),
        MACUNet(widths=(4, 8, 16, 32, 64)),
    ],
    ids=["resunet", "cgnet", "lanet", "macunet"],
)
def test_every_network_names_its_last_decoder_features(network: AnySizeSegmenter) -> None:
    images = torch.rand(2, len(BANDS), 40, 40)
    regions = torch.ones(2, 40, 40, dtype=torch.bool)
    heatmaps = landslide_cams(network.eval(), images, regions)
    assert heatmaps.shape == (2, 40, 40) and np.isfinite(heatmaps).all()


def test_se_gates_are_read_per_module_and_averaged_by_patch_kind() -> None:
    torch.manual_seed(0)
    network = ResUSENet(widths=(8, 16, 32, 64)).eval()
    images = torch.rand(4, len(BANDS), 32, 32)
    images[2:] *= 3.0  # other inputs, other gates
    gates = excitation_gates(network, images, batch_size=3)
    assert {k: tuple(v.shape) for k, v in gates.items()} == {
        "stem": (4, 8),
        "encoder1": (4, 16),
        "encoder2": (4, 32),
    }
    # The gate of the stem's SE module, computed by hand from the stem's output.
    se = network.skip_attention[0]
    expected = se._scale(network.stem(images)).flatten(1)
    torch.testing.assert_close(gates["stem"], expected.detach())
    table = mean_gates(gates, torch.tensor([True, True, False, False]), "alpha")
    stem = table[table["module"] == "stem"]
    assert len(table) == 8 + 16 + 32
    np.testing.assert_allclose(stem["landslide"], expected[:2].mean(0).detach(), rtol=1e-6)
    np.testing.assert_allclose(stem["background"], expected[2:].mean(0).detach(), rtol=1e-6)
    assert (stem["difference"].abs() > 0).any()
    assert excitation_gates(ResUNet(widths=(8, 16, 32, 64)), images) == {}


def test_patches_are_drawn_balanced_seeded_and_in_test_set_order() -> None:
    patches = [Patch(row=i, col=0, positive=i % 3 == 0) for i in range(30)]  # 10 positive
    chosen = balanced_indices(patches, 8, seed=0)
    assert chosen == sorted(chosen) and len(set(chosen)) == 8
    assert sum(patches[i].positive for i in chosen) == 4
    assert balanced_indices(patches, 8, seed=0) == chosen != balanced_indices(patches, 8, seed=1)
    assert balanced_indices(patches, None, seed=0) == list(range(30))
    # Too few of one kind: the other fills the count.
    assert sum(patches[i].positive for i in balanced_indices(patches, 26, seed=0)) == 10


def compose_explain(root: Path, overrides: list[str]):
    return compose_config(
        [
            "patches=8",
            "attribution.patches=2",
            "attribution.steps=4",
            "gradcam.patches=2",
            *overrides,
        ],
        root_dir=root,
        output_dir=root / "explained",
        config_name="explain",
        config_dir=CONF_DIR / "explain",
    )


def test_explain_writes_and_logs_the_panel_the_gates_and_the_bands(
    trained_store: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root, uri = trained_store
    models = "model=[resu_senet-ib700-seed42,resu_senet-j700-seed42]"
    (ib700, j700) = run_explain(compose_explain(root, [models, "domain=[iburi,palu]"]))

    client = mlflow.MlflowClient(uri)
    run = client.get_run(ib700.run_id)
    assert run.info.run_name == "resu_senet-ib700-seed42" and run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "explain")}
    assert artifacts == {
        "explain/iburi",
        "explain/palu",
        "explain/se_gates.png",
        "explain/band_importance.png",
        "explain/band_importance.md",
        "explain/settings.yaml",
    }
    per_domain = {a.path for a in client.list_artifacts(run.info.run_id, "explain/palu")}
    assert per_domain == {
        f"explain/palu/{name}"
        for name in ("gradcam.png", "band_importance.csv", "se_gates.csv", "settings.yaml")
    }
    metrics = run.data.metrics
    for domain in ("iburi", "palu"):
        for band in BANDS:
            assert f"explain/{domain}/f1_drop/{band}" in metrics
            assert 0.0 <= metrics[f"explain/{domain}/ig_share/{band}"] <= 1.0
    # The SE gates: one step per channel of each module.
    history = client.get_metric_history(run.info.run_id, "se/palu/encoder1/landslide")
    assert sorted(m.step for m in history) == list(range(16))
    assert all(0.0 < m.value < 1.0 for m in history)
    gates = pd.read_csv(ib700.folder / "palu" / "se_gates.csv")
    palu = gates[gates["module"] == "encoder1"]
    contrast = (palu["landslide"] - palu["background"]).abs().mean()
    assert metrics["se/palu/encoder1/contrast"] == pytest.approx(contrast)
    assert "landslide.explained" in run.data.tags

    # Written where the config says, the same numbers as logged.
    assert ib700.folder == root / "explained" / "resu_senet-ib700-seed42"
    iburi = pd.read_csv(ib700.folder / "iburi" / "band_importance.csv").set_index("band")
    assert list(iburi.index) == list(BANDS) and set(iburi["domain"]) == {"iburi"}
    assert iburi.loc["slope", "f1_drop"] == pytest.approx(metrics["explain/iburi/f1_drop/slope"])
    assert iburi["ig_share"].sum() == pytest.approx(1.0)
    assert j700.folder.name == "resu_senet-j700-seed42"


def test_explain_refuses_bad_input_in_one_line_before_writing(
    trained_store: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root, _ = trained_store
    cases = {
        "domain=atlantis": "domain=atlantis: not a test domain of run resu_senet-ib700-seed42; "
        "its test domains: iburi, jiuzhaigou, palu, luding",
        "gradcam.indices=[100000]": "gradcam.indices: test patch index 100000 of iburi",
        "patches=0": "patches=0: give an integer >= 2 or null",
        "device=gpu": "device=gpu: not a device; use device=auto, cpu, cuda or cuda:<index>",
        "device=cuda:99": "device=cuda:99: ",
    }
    for override, message in cases.items():
        cfg = compose_explain(root, ["model=resu_senet-ib700-seed42", "domain=iburi", override])
        cfg.out_dir = str(root / "refused")
        with pytest.raises(ExplainError) as raised:
            run_explain(cfg)
        assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
        assert not (root / "refused").exists()
    cfg = compose_explain(root, ["model=resu_senet-ib999-seed42"])
    with pytest.raises(ExplainError, match="model=resu_senet-ib999-seed42: no complete run"):
        run_explain(cfg)
    # As a user meets it: one line and exit status 1.
    code, output = entry_points.run("explain.py", ["model=missing/best.ckpt"], root)
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        "explain.py: model=missing/best.ckpt: no such checkpoint file"
    )


def test_a_checkpoint_path_is_explained_with_its_runs_test_data(
    trained_store: tuple[Path, str],
) -> None:
    root, uri = trained_store
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("landslide").experiment_id],
        "attributes.run_name = 'resu_senet-j700-seed42'",
    )
    (checkpoint,) = (root / "out" / "j700").rglob("epoch*.ckpt")
    subject = load_subject(
        client, str(checkpoint), ["landslide"], root / "work", torch.device("cpu")
    )
    assert subject.run.info.run_id == run.info.run_id  # the run id written in the checkpoint
    assert subject.label == "resu_senet j700 seed 42"
    assert subject.data.test_domains == ["iburi", "jiuzhaigou", "palu", "luding"]
