"""Any dataset as one CSV: ``path,mos[,std,content]``.

``path`` is relative to the CSV's folder or absolute; ``std`` and ``content`` are
optional (content defaults to the image's own name). The MOS scale comes from
``mos_range`` (the CLI's ``--mos-range LO HI``) or, when not given, from the data's
minimum and maximum, which the label note says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iqabench.data._native import absolute, make_table, relative_name, require_columns
from iqabench.data.table import DatasetTable
from iqabench.errors import IqabenchError


def read_csv_table(path: str | Path | None, mos_range: tuple[float, float] | None = None) -> DatasetTable:
    """A CSV with columns ``path,mos[,std,content]``; ROOT is the CSV file itself."""
    if path is None:
        raise IqabenchError("dataset 'csv' needs ROOT, the CSV file with columns path,mos[,std,content]")
    path = absolute(path)
    if not path.is_file():
        raise IqabenchError(f"csv: {path} is not a file (expected a CSV with columns path,mos[,std,content])")
    try:
        rows = pd.read_csv(path, dtype={"path": str, "content": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise IqabenchError(f"{path}: not a readable CSV ({err})") from err
    require_columns(rows, ("path", "mos"), path)
    folder = path.parent
    files = [absolute(folder / p) for p in rows["path"].astype(str)]  # an absolute p stays as is
    mos = pd.to_numeric(rows["mos"], errors="coerce").to_numpy(dtype=float)
    if mos_range is None:
        finite = mos[np.isfinite(mos)]
        if len(finite) == 0 or finite.min() == finite.max():
            raise IqabenchError(f"{path}: cannot take the MOS scale from the data; give --mos-range LO HI")
        mos_range, note = (float(finite.min()), float(finite.max())), "mos_range taken from the data's min and max"
    else:
        if not mos_range[0] < mos_range[1]:
            raise IqabenchError(f"--mos-range {mos_range[0]:g} {mos_range[1]:g}: LO must be below HI")
        note = f"mos_range {mos_range[0]:g}-{mos_range[1]:g} as given"
    std = pd.to_numeric(rows["std"], errors="coerce").to_numpy() if "std" in rows else None
    content = rows["content"].astype(str).tolist() if "content" in rows else None
    return make_table(
        "csv",
        folder,
        files,
        mos,
        mos_std=std,
        content_id=content if content is not None else [relative_name(f, folder) for f in files],
        mos_range=mos_range,
        label_note=f"mos from {path.name}; {note}",
        extras={"csv": str(path)},
    )
