"""Hyper-IQA architecture: the original to the parameter, and the timm contract."""

from __future__ import annotations

import pytest
import torch

from iqabench.config import HyperIQAConfig, resolve_train_config
from iqabench.models.backbone import create_features_model
from iqabench.models.hyperiqa import HyperIQA, build_model, flatten_target_params


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def resnet50_model() -> HyperIQA:
    return build_model("resnet50", init="original")


def test_resnet50_matches_original_parameter_count(resnet50_model):
    m = resnet50_model
    assert _count(m) == 27_375_369
    assert _count(m.backbone) == 23_508_032
    assert _count(m.lda) == 475_360
    assert _count(m.hyper_in) == 2_680_432
    generators = _count(m.weight_convs) + _count(m.weight_fc_last) + _count(m.bias_fcs)
    assert generators == 711_545


def test_resnet50_lda_and_generator_shapes(resnet50_model):
    m = resnet50_model
    assert [b.conv.out_channels for b in m.lda[:3]] == [16, 32, 64]
    assert [b.grid for b in m.lda] == [8, 4, 2, 1]
    assert [b.fc.out_features for b in m.lda] == [16, 16, 16, 176]
    assert [c.out_channels for c in m.hyper_in if isinstance(c, torch.nn.Conv2d)] == [1024, 512, 112]
    assert [c.out_channels for c in m.weight_convs] == [512, 128, 32, 8]


def test_resnet50_target_network_is_224_112_56_28_14_1(resnet50_model):
    with torch.no_grad():
        scores, params = resnet50_model(torch.rand(2, 3, 224, 224), return_params=True)
    assert scores.shape == (2,)
    shapes = [tuple(params[f"w{i}"].shape[1:]) for i in range(1, 6)]
    assert shapes == [(112, 224), (56, 112), (28, 56), (14, 28), (1, 14)]
    assert [params[f"b{i}"].shape[1] for i in range(1, 6)] == [112, 56, 28, 14, 1]
    assert flatten_target_params(params).shape == (2, sum(a * b + a for a, b in shapes))


def test_target_network_uses_each_images_own_weights():
    """The batched matmul equals running every image through its own small MLP."""
    torch.manual_seed(0)
    x = torch.randn(3, 224)
    sizes = (224, 112, 56, 28, 14, 1)
    params = {}
    for i, (f_in, f_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"w{i}"] = torch.randn(3, f_out, f_in) * 0.1
        params[f"b{i}"] = torch.randn(3, f_out)
    batched = HyperIQA.run_target(x, params)
    for n in range(3):
        h = x[n]
        for i in range(1, 6):
            h = params[f"w{i}"][n] @ h + params[f"b{i}"][n]
            if i < 5:
                h = torch.sigmoid(h)
        assert torch.allclose(batched[n], h.squeeze(), atol=1e-5)


def test_gradients_reach_hyper_network_and_backbone():
    m = build_model("test_resnet")
    m(torch.rand(2, 3, 64, 64)).sum().backward()
    assert m.weight_convs[0].weight.grad.abs().sum() > 0
    assert m.hyper_in[0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.backbone.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ["test_resnet", "test_convnext", "test_efficientnet", "test_vit"])
@pytest.mark.parametrize("hyper_input", ["last", "multiscale"])
def test_sizes_follow_feature_info(name, hyper_input):
    """timm's contract: every head size derives from the backbone's feature_info."""
    m = build_model(name, hyper_input)
    info = m.backbone.feature_info
    channels = info.channels()[-len(m.lda):]
    assert list(m.spec.channels) == channels
    assert [b.conv.in_channels for b in m.lda[:-1]] == channels[:-1]
    assert m.lda[-1].fc.in_features == channels[-1]
    expected_in = sum(channels) if hyper_input == "multiscale" else channels[-1]
    assert m.hyper_in[0].in_channels == expected_in
    with torch.no_grad():
        y = m(torch.rand(2, 3, 96, 96))
    assert y.shape == (2,) and torch.isfinite(y).all()


def test_swin_nhwc_features_become_nchw():
    with torch.device("meta"):  # the real Swin-T's sizes, without its weights' memory and init time
        full = build_model("swin_tiny_patch4_window7_224", "multiscale")
    assert full.spec.output_fmt == "NHWC"
    assert full.spec.channels == (96, 192, 384, 768)
    assert full.hyper_in[0].in_channels == 1440  # global averages of all stages: 96+192+384+768
    # the same class at a tiny width and depth runs the NHWC -> NCHW path for real
    tiny = create_features_model("swin_tiny_patch4_window7_224", embed_dim=16, depths=(1, 1, 1, 1),
                                 num_heads=(1, 1, 1, 1))
    m = HyperIQA(HyperIQAConfig(backbone="swin_tiny_patch4_window7_224", hyper_input="multiscale"),
                 backbone=tiny)
    assert m.spec.output_fmt == "NHWC" and m.hyper_in[0].in_channels == 16 + 32 + 64 + 128
    with torch.no_grad():
        stages = m.features(torch.rand(1, 3, 224, 224))
        assert [tuple(s.shape[1:]) for s in stages] == [
            (16, 56, 56), (32, 28, 28), (64, 14, 14), (128, 7, 7)]
        assert torch.isfinite(m(torch.rand(1, 3, 224, 224))).all()


@pytest.mark.parametrize("size", [256, 384])
def test_other_input_sizes_run(size):
    m = build_model("test_resnet", input_size=size)
    with torch.no_grad():
        assert m(torch.rand(1, 3, size, size)).shape == (1,)


def test_normalisation_comes_from_pretrained_cfg():
    lite = build_model("tf_efficientnet_lite0")
    assert lite.mean.flatten().tolist() == pytest.approx([0.5, 0.5, 0.5])
    with torch.device("meta"):  # the spec the buffers are built from; no weights needed
        r50 = build_model("resnet50")
    assert r50.spec.std == pytest.approx((0.229, 0.224, 0.225))
    assert lite.spec.mean == pytest.approx((0.5, 0.5, 0.5)) and r50.spec.mean != lite.spec.mean
    x = (torch.rand(1, 3, 64, 64) * 255).to(torch.uint8)
    with torch.no_grad():
        assert torch.allclose(lite.features(x)[-1], lite.features(x.float() / 255)[-1], atol=1e-5)


def test_centered_init_starts_near_score_init():
    torch.manual_seed(0)
    centered = build_model("test_resnet", score_init=0.5)
    original = build_model("test_resnet", init="original")
    x = torch.rand(8, 3, 64, 64)
    with torch.no_grad():
        c, o = centered(x), original(x)
    assert (c - 0.5).abs().max() < 0.3
    assert (c - 0.5).abs().mean() < (o - 0.5).abs().mean()


def test_recipe_original_backbone_asks_timm_for_torchvision_weights():
    cfg = resolve_train_config(None, {"dataset": "livec", "recipe": "original"})
    model = HyperIQA(cfg.model, pretrained=False)  # no download: the tag it would fetch
    assert model.backbone.pretrained_cfg["tag"] == "tv_in1k"
    assert model.backbone.pretrained_cfg["hf_hub_id"] == "timm/resnet50.tv_in1k"
    assert sum(p.numel() for p in model.parameters()) == 27_375_369  # the same network


def test_centered_output_bias_defaults_to_half_and_can_be_set():
    torch.manual_seed(0)
    model = build_model("test_resnet").eval()  # score_init None: 0.5 outside training
    assert model.config.score_init is None and model.bias_fcs[-1].bias.item() == 0.5
    model.set_output_bias(50.0)  # e.g. the mean of raw 0-100 training labels
    with torch.no_grad():
        scores = model(torch.rand(4, 3, 64, 64))
    assert (scores - 50.0).abs().max() < 0.5


def test_bias_generators_see_the_mean_of_the_112_channel_map():
    torch.manual_seed(0)
    model = build_model("test_resnet", hyper_input="multiscale").eval()
    seen = {}
    model.bias_fcs[0].register_forward_hook(lambda m, args, out: seen.update(bias=args[0]))
    model.hyper_in.register_forward_hook(lambda m, args, out: seen.update(map=out))
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64))
    assert seen["bias"].shape == (2, model.config.hyper_channels)
    assert torch.allclose(seen["bias"], seen["map"].mean(dim=(2, 3)))


def test_config_round_trip_and_unknown_keys():
    cfg = HyperIQAConfig(backbone="test_resnet", hyper_input="multiscale")
    assert HyperIQAConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="hyper_inptu"):
        HyperIQAConfig.from_dict({"hyper_inptu": "last"})
