"""Configs: layered defaults < recipe < file < flags, unknown keys refused by name, every
bad value reported on one line."""

from __future__ import annotations

import pytest
import yaml

from iqabench.config import (
    EvalConfig,
    HyperIQAConfig,
    TestSet,
    TrainConfig,
    load_config_file,
    parse_test_set,
    resolve_train_config,
    save_config,
)
from iqabench.errors import IqabenchError


def test_defaults_and_flags():
    cfg = resolve_train_config(None, {"dataset": "livec", "epochs": 3,
                                      "model": {"backbone": "test_resnet"}})
    assert cfg.epochs == 3 and cfg.model.backbone == "test_resnet"
    assert cfg.model.hyper_input == "last" and cfg.loss == "l1" and cfg.label_scale == "unit"


def test_yaml_file_then_flags_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: livec\nroot: /data/livec\nlr: 2e-5\nepochs: 4\n"
                    "model:\n  backbone: convnext_tiny\n  hyper_input: multiscale\n"
                    "tests:\n  - {dataset: koniq10k, root: /data/koniq}\n")
    cfg = resolve_train_config(path, {"epochs": 9, "model": {"input_size": 256}})
    assert cfg.lr == pytest.approx(2e-5)  # YAML 1.1 reads 2e-5 as a string: converted
    assert cfg.epochs == 9  # flag wins
    assert cfg.model.backbone == "convnext_tiny" and cfg.model.input_size == 256
    assert cfg.model.hyper_input == "multiscale"
    assert cfg.tests == (TestSet("koniq10k", "/data/koniq"),)


def test_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('dataset = "agiqa3k"\nloss = "l1+rank"\nalpha = 0.5\n[model]\nbackbone = "resnet50"\n')
    cfg = resolve_train_config(path)
    assert (cfg.dataset, cfg.loss, cfg.alpha, cfg.model.backbone) == ("agiqa3k", "l1+rank", 0.5, "resnet50")


def test_unknown_keys_are_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: livec\nepochs: 2\nlearning_rate: 0.1\nmodel:\n  backbone: x\n"
                    "  hyperinput: last\n")
    with pytest.raises(IqabenchError) as err:
        resolve_train_config(path)
    assert "learning_rate" in str(err.value) and "model.hyperinput" in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("text, fragment", [
    ("loss: mse\n", "loss"),
    ("epochs: two\n", "epochs"),
    ("epochs: 0\n", "epochs"),
    ("eval_crops: 10\n", "square"),
    ("rounds: 2\nround: 5\n", "round"),
    ("pretrained: maybe\n", "pretrained"),
])
def test_bad_values_are_named(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: livec\n" + text)
    with pytest.raises(IqabenchError, match=fragment) as err:
        resolve_train_config(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message


def test_unparseable_and_missing_files(tmp_path):
    with pytest.raises(IqabenchError, match="not found"):
        load_config_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(IqabenchError, match="cannot parse"):
        load_config_file(bad)
    other = tmp_path / "run.json"
    other.write_text("{}")
    with pytest.raises(IqabenchError, match="toml"):
        load_config_file(other)


def test_recipe_original_then_overrides(tmp_path):
    cfg = resolve_train_config(None, {"dataset": "livec", "recipe": "original"})
    assert (cfg.crops_per_image, cfg.batch_size, cfg.lr, cfg.head_lr_ratio, cfg.epochs) == (25, 96, 2e-5, 10.0, 16)
    assert cfg.label_scale == "raw" and cfg.model.init == "original" and cfg.loss == "l1"
    assert cfg.eval_crops == 25 and cfg.weight_decay == pytest.approx(5e-4)
    path = tmp_path / "r.yaml"
    path.write_text("dataset: livec\nrecipe: original\nepochs: 3\n")
    cfg = resolve_train_config(path, {"batch_size": 8})
    assert (cfg.recipe, cfg.epochs, cfg.batch_size, cfg.crops_per_image) == ("original", 3, 8, 25)


def test_recipe_original_uses_torchvision_resnet50_weights():
    # the original code loads torchvision's ResNet-50; timm's bare resnet50 is a1_in1k
    cfg = resolve_train_config(None, {"dataset": "livec", "recipe": "original"})
    assert cfg.model.backbone == "resnet50.tv_in1k"
    assert "resnet50.tv_in1k" in TrainConfig.model_fields["recipe"].description
    other = resolve_train_config(None, {"dataset": "livec", "recipe": "original",
                                        "model": {"backbone": "tf_efficientnet_lite0"}})
    assert other.model.backbone == "tf_efficientnet_lite0" and other.model.init == "original"
    assert resolve_train_config(None, {"dataset": "livec"}).model.backbone == "resnet50"


def test_saved_config_round_trips(tmp_path):
    cfg = resolve_train_config(None, {"dataset": "koniq10k", "tests": [TestSet("livec", "/x")],
                                      "limit": 40,
                                      "model": {"backbone": "test_resnet", "input_size": 64}})
    save_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["model"]["backbone"] == "test_resnet" and data["tests"] == [{"dataset": "livec", "root": "/x"}]
    assert resolve_train_config(tmp_path / "config.yaml") == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_parse_test_set():
    assert parse_test_set("livec:/data/ChallengeDB_release") == TestSet("livec", "/data/ChallengeDB_release")
    assert parse_test_set("synthetic") == TestSet("synthetic", None)
    with pytest.raises(IqabenchError):
        parse_test_set(":/x")


def test_eval_config_checks():
    with pytest.raises(IqabenchError, match="logistic"):
        EvalConfig(checkpoint="x", dataset="y", logistic=3)


def test_bad_value_names_key_value_and_file_on_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: livec\nepochs: two\nloss: mse\nmodel:\n  hyper_input: all\n")
    with pytest.raises(IqabenchError) as err:
        resolve_train_config(path, {"batch_size": 8})
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "epochs = 'two'" in message and "loss = 'mse'" in message
    assert "model.hyper_input = 'all'" in message
    assert message.count("bad train config") == 1  # the source is named once, not nested


def test_flag_errors_name_their_source_once():
    with pytest.raises(IqabenchError) as err:
        TrainConfig.from_dict({"dataset": "x", "epochs": "a"}, source="flags")
    assert str(err.value).startswith("bad train config in flags: epochs = 'a'")
    assert str(err.value).count("bad train config") == 1


def test_dataset_is_required():
    with pytest.raises(IqabenchError, match="--dataset"):
        resolve_train_config(None, {"epochs": 2})
    with pytest.raises(IqabenchError, match="dataset is required"):
        TrainConfig.from_dict({"epochs": 2})


def test_strings_from_yaml_are_converted_and_tests_parsed():
    cfg = TrainConfig.from_dict({"dataset": "livec", "seed": "3", "lr": "2e-5", "epochs": 2.0,
                                 "tests": ["koniq10k:/k", {"dataset": "synthetic"}]})
    assert (cfg.seed, cfg.lr, cfg.epochs) == (3, 2e-5, 2)
    assert cfg.tests == (TestSet("koniq10k", "/k"), TestSet("synthetic"))
    with pytest.raises(IqabenchError, match="epochs = 2.5"):
        TrainConfig.from_dict({"dataset": "livec", "epochs": 2.5})


def test_replace_validates_and_keeps_the_rest():
    cfg = TrainConfig(dataset="livec", epochs=3)
    assert cfg.replace(round=None, epochs=4) == TrainConfig(dataset="livec", epochs=4)
    assert cfg.replace(epochs=4).model == cfg.model
    with pytest.raises(IqabenchError, match="epochs"):
        cfg.replace(epochs=0)
    with pytest.raises(ValueError, match="frozen"):
        cfg.epochs = 5  # configs are values: change them through replace


def test_model_config_from_dict_names_unknown_keys():
    with pytest.raises(IqabenchError, match="hyper_inptu"):
        HyperIQAConfig.from_dict({"hyper_inptu": "last"})
    assert HyperIQAConfig.from_dict({"target_sizes": [8, 4]}).target_sizes == (8, 4)


def test_config_needs_neither_torch_nor_timm():
    import subprocess
    import sys

    code = ("import sys, iqabench.config; "
            "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
