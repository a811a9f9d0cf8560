"""Write a run folder's report: one self-contained HTML page (`cosim report RUN_DIR`).

The page comes from one Jinja2 template (``templates/report.html.j2``) filled with the `Page` of the folder's
kind (`cosim.report.kinds`): run card, outcome table, key figures, then folded sections. Images are embedded as
data URIs, scaled down and reduced to a small palette, so the page can be mailed or archived as one file.
"""
from __future__ import annotations

import base64
import datetime
import io
from pathlib import Path

import jinja2
from PIL import Image

from cosim.report.kinds import page_of
from cosim.report.outcomes import number

PALETTE = 64
"""Colours of an embedded image: plots have few, and a palette PNG of them is 3-5 times smaller than the RGB one."""

_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("cosim.report", "templates"), autoescape=True,
                                undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_TEMPLATES.filters["number"] = number


def embed(path: Path, width: int) -> str:
    """A PNG as a data URI, scaled down to at most `width` pixels wide (never up) and reduced to `PALETTE`
    colours."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(PALETTE, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(buffer, "PNG",
                                                                                            optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def build_report(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Write `report.html` (or `out`) for `run_dir` and return its path.

    Raises FileNotFoundError if `run_dir` does not exist, `cosim.report.kinds.ReportError` if it is not a run
    folder of a kind the package writes (or one of its files cannot be read).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    page = page_of(run_dir)
    judged = [o.met for o in page.outcomes if o.met is not None]
    html = _TEMPLATES.get_template("report.html.j2").render(
        page=page, name=run_dir.resolve().name, folder=run_dir.resolve(), root=run_dir, embed=embed,
        built=datetime.datetime.now().isoformat(timespec="seconds"), met=sum(judged), judged=len(judged))
    out = Path(out) if out is not None else run_dir / "report.html"
    out.write_text(html)
    return out
