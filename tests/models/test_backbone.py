"""Backbone wrapper: stage selection, layout, normalisation, and errors."""

from __future__ import annotations

import pytest
import torch

from iqabench.errors import IqabenchError
from iqabench.models.backbone import create_features_model, describe, stages_nchw


def test_unknown_backbone_is_a_one_line_error_with_hint():
    with pytest.raises(IqabenchError, match="unknown timm backbone 'resnet5o'"):
        create_features_model("resnet5o")


def test_last_four_stages_are_read():
    with torch.device("meta"):  # sizes only: no weights' memory or init time
        model = create_features_model("resnet50")
    spec = describe(model, "resnet50")
    assert spec.channels == (256, 512, 1024, 2048)
    assert spec.reductions == (4, 8, 16, 32)
    assert len(model.feature_info.channels()) == 5  # stride-2 stem output is skipped


def test_nhwc_maps_are_permuted():
    with torch.device("meta"):
        model = create_features_model("swin_tiny_patch4_window7_224")
    spec = describe(model, "swin")
    feats = [torch.zeros(1, 56, 56, 96), torch.zeros(1, 28, 28, 192),
             torch.zeros(1, 14, 14, 384), torch.zeros(1, 7, 7, 768)]
    assert [t.shape[1] for t in stages_nchw(feats, spec)] == [96, 192, 384, 768]


def test_fixed_grid_backbone_built_for_other_input_size():
    model = create_features_model("swin_tiny_patch4_window7_224", input_size=256,  # the real class, tiny
                                  embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    with torch.no_grad():
        out = model(torch.rand(1, 3, 256, 256))
    assert out[-1].shape[1:3] == (8, 8)  # NHWC, 256 / 32
