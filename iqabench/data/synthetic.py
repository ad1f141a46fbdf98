"""``synthetic``: a small IQA set made on the spot from scikit-image's bundled photographs.

It lets the tool (tests, CI, the demo) run with no dataset download. Its scores are
**synthetic, not human opinions**: they grade how strongly an image was distorted, so a
model can learn something and the pipeline can be checked end to end, but a number on
this set says nothing about agreement with people.

Content: 12 references (8 colour, 4 grey photographs from ``skimage.data``), each centre
cropped to a square and resized to 256 x 256, kept as level-0 images (score 100). Each is
distorted by 6 types x 5 levels (grey references skip the colour-saturation type, which
would leave them unchanged): 8 x 31 + 4 x 26 = 352 images.

Score ("synthetic MOS", 0-100, higher = better), for distortion level ``l`` in 0..5::

    mos = 100 * (0.5 * (1 - l / 5) + 0.5 * max(SSIM(reference, image), 0))

SSIM: Wang et al. 2004 with a 7 x 7 uniform window and sample covariance (scikit-image's
defaults), computed on each RGB channel of the uint8 images and averaged. The level term
makes scores fall strictly with the level within a type; the SSIM term puts types on one
scale (a level-3 noise and a level-3 contrast change differ in visible damage).

Columns beyond the standard table: ``group`` = distortion type (``reference`` for the
originals), ``level``, ``ssim``. ``content_id`` = reference name, so splits keep all
versions of one photograph on one side. Generation is deterministic given ``seed`` (it
seeds the noise) and the installed scikit-image/Pillow, takes a few seconds, and writes
PNGs (lossless, so the JPEG type keeps exactly its own artefacts).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance
from scipy.ndimage import gaussian_filter, uniform_filter

from iqabench.data._native import decode_threads
from iqabench.data.table import COLUMNS, DatasetTable
from iqabench.errors import IqabenchError

log = logging.getLogger(__name__)

VERSION = 1  # bump when images, levels or the score formula change
SIZE = 256
LEVELS = 5
MOS_RANGE = (0.0, 100.0)
LABEL_NOTE = (
    "synthetic scores, not human opinions: mos = 100 * (0.5 * (1 - level/5) + "
    "0.5 * max(SSIM(reference, image), 0)), level 0 = undistorted reference"
)

#: skimage.data loaders; ``stereo_motorcycle`` returns (left, right, disparity).
COLOUR_REFERENCES = (
    "astronaut", "chelsea", "coffee", "rocket", "motorcycle",
    "immunohistochemistry", "hubble_deep_field", "retina",
)  # fmt: skip
GREY_REFERENCES = ("camera", "coins", "moon", "brick")

#: Distortion parameter per level 1..5.
DISTORTIONS = {
    "blur": (0.8, 1.5, 2.5, 4.0, 6.0),  # Gaussian sigma, px
    "noise": (5.0, 10.0, 20.0, 35.0, 55.0),  # additive Gaussian std, 0-255 units
    "jpeg": (50, 30, 15, 8, 3),  # Pillow JPEG quality
    "contrast": (0.8, 0.6, 0.4, 0.25, 0.12),  # factor towards the image's mean grey
    "saturation": (1.6, 2.2, 3.0, 4.0, 5.5),  # Pillow ImageEnhance.Color factor (over-saturation)
    "pixelate": (2, 3, 4, 6, 8),  # block size, px
}


def default_root() -> Path:
    """``$IQABENCH_CACHE/synthetic`` or ``~/.cache/iqabench/synthetic``."""
    base = os.environ.get("IQABENCH_CACHE")
    base = Path(base) if base else Path.home() / ".cache" / "iqabench"
    return base / "synthetic"


def read_synthetic(root: str | Path | None = None, seed: int | None = None) -> DatasetTable:
    """The synthetic dataset, generated into ``root`` on first use and then reused.

    ``root`` None: ``default_root()/v{VERSION}-seed{seed}`` (seed 0 by default). A given
    ``root`` must be absent, empty, or hold this dataset; ``seed`` None accepts the seed
    found there, an explicit seed must match it.
    """
    if root is None:
        root = default_root() / f"v{VERSION}-seed{0 if seed is None else seed}"
        owned = True  # our cache folder: a broken copy may be replaced
    else:
        root = Path(root)
        owned = False
    meta_path = root / "metadata.json"
    if not meta_path.is_file():
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise IqabenchError(
                f"{root} is not empty and holds no synthetic dataset (no metadata.json); choose an empty folder"
            )
        _generate_into(root, 0 if seed is None else seed)
    try:
        return _read(root, seed)
    except IqabenchError:
        if not owned:
            raise
        log.warning("synthetic dataset in %s is incomplete; generating it again", root)
        shutil.rmtree(root)
        _generate_into(root, 0 if seed is None else seed)
        return _read(root, seed)


def _read(root: Path, seed: int | None) -> DatasetTable:
    meta_path = root / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        raise IqabenchError(f"{meta_path} is not readable JSON ({err})") from None
    if meta.get("version") != VERSION:
        raise IqabenchError(
            f"{root} holds synthetic data version {meta.get('version')}, this iqabench makes "
            f"version {VERSION}; use another folder"
        )
    if seed is not None and meta.get("seed") != seed:
        raise IqabenchError(f"{root} holds synthetic data of seed {meta.get('seed')}, not {seed}")
    frame = pd.read_csv(root / "scores.csv", dtype={"name": str, "content_id": str, "group": str})
    frame["official_split"] = ""
    frame["mos_std"] = np.nan
    frame["path"] = [str(root / n) for n in frame["name"]]
    absent = [p for p in frame["path"] if not os.path.isfile(p)]
    if absent or len(frame) != meta.get("images"):
        raise IqabenchError(f"synthetic dataset in {root} is incomplete (e.g. {absent[:1]}); delete the folder")
    frame = frame[list(COLUMNS) + ["group", "level", "ssim"]]
    return DatasetTable(
        name="synthetic",
        root=root,
        frame=frame,
        mos_range=MOS_RANGE,
        label_note=LABEL_NOTE,
        resize=None,
        extras={"seed": meta["seed"], "version": VERSION, "synthetic": True},
    )


def _generate_into(root: Path, seed: int) -> None:
    """Generate in a temporary sibling folder, then move it into place in one step."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    generate(tmp, seed)
    try:
        if root.exists():
            root.rmdir()  # only ever empty here
        os.rename(tmp, root)
    except OSError:
        # another process finished first: keep theirs if it is complete
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / "metadata.json").is_file():
            raise


def _load_reference(name: str) -> np.ndarray:
    """(SIZE, SIZE, 3) uint8: centre square crop of the skimage photograph, resized."""
    import skimage.data

    pixels = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    h, w = pixels.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = Image.fromarray(pixels[top : top + side, left : left + side]).convert("RGB")
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.LANCZOS))


def distort(image: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
    """Apply distortion ``kind`` at ``level`` (1..5) to an (H, W, 3) uint8 image."""
    value = DISTORTIONS[kind][level - 1]
    pixels = image.astype(np.float32)
    if kind == "blur":
        out = gaussian_filter(pixels, sigma=(value, value, 0), mode="reflect")
    elif kind == "noise":
        out = pixels + rng.normal(0.0, value, size=pixels.shape).astype(np.float32)
    elif kind == "contrast":
        out = pixels.mean() + value * (pixels - pixels.mean())
    elif kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=int(value))
        return np.asarray(Image.open(buf).convert("RGB"))
    elif kind == "saturation":
        return np.asarray(ImageEnhance.Color(Image.fromarray(image)).enhance(value))
    elif kind == "pixelate":
        h, w = image.shape[:2]
        small = Image.fromarray(image).resize((w // value, h // value), Image.Resampling.BOX)
        return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))
    else:
        raise ValueError(f"unknown distortion {kind!r}")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean SSIM over RGB channels, 7x7 uniform window, sample covariance, L = 255.

    Matches ``skimage.metrics.structural_similarity(..., channel_axis=-1,
    data_range=255)`` to float32 precision at about twice its speed.
    """
    a, b = reference.astype(np.float32), image.astype(np.float32)

    def mean(x: np.ndarray) -> np.ndarray:
        return uniform_filter(x, size=(7, 7, 1), mode="reflect")

    mu_a, mu_b = mean(a), mean(b)
    correction = 49.0 / 48.0  # sample covariance over the 7x7 window
    var_a = correction * (mean(a * a) - mu_a * mu_a)
    var_b = correction * (mean(b * b) - mu_b * mu_b)
    cov = correction * (mean(a * b) - mu_a * mu_b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s[3:-3, 3:-3].mean())  # skimage drops the border half-window


def synthetic_mos(level: int, ssim_value: float) -> float:
    """The documented score formula (see the module docstring)."""
    return 100.0 * (0.5 * (1.0 - level / LEVELS) + 0.5 * max(ssim_value, 0.0))


def _make_reference(folder: Path, ref_index: int, ref: str, colour: bool, seed: int) -> list[tuple]:
    """Write one reference and its distorted versions; return their score rows."""
    reference = _load_reference(ref)
    name = f"images/{ref}.png"
    Image.fromarray(reference).save(folder / name, compress_level=1)
    rows = [(name, 100.0, ref, "reference", 0, 1.0)]
    for kind_index, kind in enumerate(DISTORTIONS):
        if kind == "saturation" and not colour:
            continue  # a grey image has no saturation to change
        for level in range(1, LEVELS + 1):
            rng = np.random.default_rng(np.random.SeedSequence([seed, ref_index, kind_index, level]))
            out = distort(reference, kind, level, rng)
            name = f"images/{ref}_{kind}_{level}.png"
            Image.fromarray(out).save(folder / name, compress_level=1)
            value = ssim(reference, out)
            rows.append((name, round(synthetic_mos(level, value), 4), ref, kind, level, round(value, 6)))
    return rows


def generate(folder: Path, seed: int = 0) -> pd.DataFrame:
    """Write images, ``scores.csv``, ``metadata.json`` and ``README.md`` into ``folder``.

    References are processed in threads (PNG encoding and the filters release the GIL);
    every random draw is seeded per (seed, reference, type, level), so order is irrelevant.
    """
    (folder / "images").mkdir(parents=True, exist_ok=True)
    references = [(n, True) for n in COLOUR_REFERENCES] + [(n, False) for n in GREY_REFERENCES]
    with ThreadPoolExecutor(decode_threads()) as pool:
        parts = pool.map(
            lambda item: _make_reference(folder, item[0], item[1][0], item[1][1], seed), enumerate(references)
        )
        rows = [row for part in parts for row in part]
    frame = pd.DataFrame(rows, columns=["name", "mos", "content_id", "group", "level", "ssim"])
    frame.to_csv(folder / "scores.csv", index=False, lineterminator="\n")
    import PIL
    import skimage

    meta = {
        "dataset": "synthetic",
        "version": VERSION,
        "seed": seed,
        "images": len(frame),
        "references": [r for r, _ in references],
        "size": [SIZE, SIZE],
        "distortions": {k: list(v) for k, v in DISTORTIONS.items()},
        "mos_range": list(MOS_RANGE),
        "label_note": LABEL_NOTE,
        "human_opinions": False,
        "made_with": {"scikit-image": skimage.__version__, "pillow": PIL.__version__},
    }
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    (folder / "README.md").write_text(_readme(meta))
    return frame


def _readme(meta: dict) -> str:
    levels = "\n".join(f"| {k} | {', '.join(str(v) for v in vals)} |" for k, vals in meta["distortions"].items())
    return f"""# iqabench synthetic IQA set (version {meta['version']}, seed {meta['seed']})

**The scores are synthetic, not human opinions.** They grade how strongly each image was
distorted; use this set to exercise the tool, never to claim agreement with people.

- {meta['images']} images, {SIZE}x{SIZE} PNG, made from scikit-image's bundled photographs
  ({', '.join(meta['references'])}), each kept undistorted as level 0.
- `scores.csv`: `name, mos, content_id, group, level, ssim`; `content_id` = reference,
  `group` = distortion type (`reference` for the originals).
- Score (0-100, higher = better): `mos = 100 * (0.5 * (1 - level/5) + 0.5 * max(SSIM, 0))`,
  SSIM against the reference (7x7 uniform window, mean over RGB channels).
- Grey references skip the `saturation` type (it would not change them).

| distortion | parameter at levels 1..5 |
|---|---|
{levels}

Made by `iqabench.data.synthetic` with scikit-image {meta['made_with']['scikit-image']},
Pillow {meta['made_with']['pillow']}; deterministic given the seed (it seeds the noise).
"""
