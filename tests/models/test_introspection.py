"""models.introspection: traced shapes of the hyper-network input, generated weights."""

from __future__ import annotations

import torch

from iqabench.analysis.types import format_shape
from iqabench.config import HyperIQAConfig
from iqabench.models.hyperiqa import build_model
from iqabench.models.introspection import target_weights, trace_hyper_flow

SIZES = (224, 112, 56, 28, 14, 1)  # target network of test_resnet: in, 4 hidden, out
N_PARAMS = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))  # weights and biases


def test_hyper_flow_trace_reads_real_shapes():
    cfg = HyperIQAConfig(backbone="test_resnet", input_size=64)
    last = trace_hyper_flow(cfg, "last")
    multi = trace_hyper_flow(cfg, "multiscale")
    channels = [s[1] for s in last.stages]
    assert channels == [32, 48, 192, 96]  # test_resnet's last four stages
    assert last.hyper_in_input == (1, 96, 7, 7)
    assert multi.hyper_in_input == (1, sum(channels), 7, 7)
    assert multi.pooled == [(1, c, 7, 7) for c in channels]
    assert last.map == multi.map == (1, 112, 7, 7)
    assert multi.params["w1"] == (1, 112, 224) and multi.params["b5"] == (1, 1)
    assert multi.hyper_in_params > last.hyper_in_params
    assert last.stage_used == [False, False, False, True] and all(multi.stage_used)


def test_target_weights_are_one_center_crop_per_image():
    torch.manual_seed(0)
    model = build_model("test_resnet", "last", input_size=64).eval()
    images = [torch.randint(0, 256, (3, 80, 96), dtype=torch.uint8) for _ in range(3)]
    params = target_weights(model, images, crop_size=64, batch_size=2)
    assert params.shape == (3, N_PARAMS) and params.dtype.name == "float64"
    centre = images[1][:, 8:72, 16:80].unsqueeze(0)  # the 64 px center of an 80x96 image
    with torch.no_grad():
        _, own = model(centre, return_params=True)
    assert torch.allclose(torch.from_numpy(params[1]).float(),
                          torch.cat([own[k].flatten() for k in sorted(
                              own, key=lambda k: (k[0], int(k[1:])))]), atol=1e-5)


def test_format_shape():
    assert format_shape((1, 3, 224, 224)) == "1×3×224×224"
    assert format_shape(torch.Size([2, 5])) == "2×5"
