"""Rate–distortion figures: PSNR–bpp and MS-SSIM–bpp panels, BD-rates vs an anchor in the legend."""

from __future__ import annotations


import numpy as np

from jaxsemic import io
from jaxsemic.errors import UserError
from jaxsemic.eval import bdrate
from jaxsemic.eval.results import RDResults

PANELS = {"psnr-rgb": "PSNR RGB (dB)", "ms-ssim-db-rgb": "MS-SSIM RGB (dB)"}
MARKERS = "osD^v<>pPX*hd"
# tab10 then three more distinct hues; the anchor is always black and dashed.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#8c6d31", "#637939")


def bd_rates(curves: list[RDResults], anchor: RDResults, metric: str = "psnr-rgb",
             max_bpp: float | None = 1.5, method: str = "cubic") -> dict[str, float | None]:
  """BD-rate (%) of every curve vs anchor (classic cubic or pchip), with the restriction rule; None if undefined."""
  a = bdrate.restrict_curve(*anchor.curve(metric), max_bpp=max_bpp)
  out: dict[str, float | None] = {}
  for curve in curves:
    try:
      t = bdrate.restrict_curve(*curve.curve(metric), max_bpp=max_bpp)
      out[curve.name] = bdrate.bd_rate(*a, *t, method=method)
    except UserError:  # missing metric, too few points or no overlap
      out[curve.name] = None
  return out


def _has(curve: RDResults, metric: str) -> bool:
  return metric in curve.results or (metric == "ms-ssim-db-rgb" and "ms-ssim-rgb" in curve.results)


def plot_rd(curves: list[RDResults], out_path: str, *, anchor: RDResults | None = None,
            bd_metric: str = "psnr-rgb", max_bpp: float | None = None, title: str = "",
            force: bool = False, bd_method: str = "cubic") -> dict[str, float | None]:
  """Draws the figure to out_path (PNG/PDF/SVG by extension); returns the BD-rates shown."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  io.check_output(out_path, force)
  panels = [m for m in PANELS if any(_has(c, m) for c in curves)]
  rates = bd_rates(curves, anchor, bd_metric, method=bd_method) if anchor is not None else {}
  fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 5.6), squeeze=False)
  for ax, metric in zip(axes[0], panels):
    for i, curve in enumerate(curves):
      if not _has(curve, metric):
        continue
      bpp, quality = curve.curve(metric)
      order = np.argsort(bpp)
      keep = order if max_bpp is None else order[bpp[order] <= max_bpp]
      label = curve.name
      if curve.name in rates:
        rate = rates[curve.name]
        label += " (anchor)" if curve is anchor else (f"  {rate:+.1f}%" if rate is not None else "  n/a")
      ax.plot(bpp[keep], quality[keep], marker=MARKERS[i % len(MARKERS)], markersize=4,
              linewidth=2.2 if curve is anchor else 1.4,
              color="black" if curve is anchor else COLOURS[i % len(COLOURS)],
              linestyle="--" if curve is anchor else "-", label=label)
    ax.set_xlabel("bits per pixel (bpp)")
    ax.set_ylabel(PANELS[metric])
    ax.grid(True, alpha=0.35)
  legend_title = (f"BD-rate vs {anchor.name} ({bd_metric}, {bd_method})" if anchor is not None else None)
  axes[0][0].legend(loc="lower right", fontsize=8.5, title=legend_title, title_fontsize=8.5)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  try:
    with io.atomic_path(out_path, force) as tmp:
      fig.savefig(tmp, dpi=110)
  finally:
    plt.close(fig)
  return rates
