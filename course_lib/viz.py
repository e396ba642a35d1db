"""Pictures for the notebooks: point clouds, vector fields, trajectories, image rows, curves and
small inline animations.

Every function returns a :class:`Picture`: a closed matplotlib figure that shows itself as a PNG
when a notebook cell ends with it (exactly once, whatever the matplotlib backend), and keeps the
figure in ``.fig`` (``picture.savefig(path)`` works). matplotlib is imported inside the
functions: the training and sampling core never needs it.

Shapes: points are ``[n, 2]``; a trajectory is a list of ``[n, 2]`` states; images are
``[n, C, H, W]`` in ``[-1, 1]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

LIM = 1.6  # half-width of the square the 2D pictures show (the spiral fits in about ±1.1)
DATA_COLOR = "#bbbbbb"
POINT_COLOR = "#1f77b4"


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
    return fig, axes


class Picture:
    """A finished figure: ``_repr_png_`` for notebooks, ``.fig`` and ``savefig`` for the rest."""

    def __init__(self, fig: Any, dpi: int = 90) -> None:
        self.fig, self.dpi = fig, dpi

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=self.dpi)
        return buffer.getvalue()

    def savefig(self, path: str, **kwargs: Any) -> None:
        self.fig.savefig(path, **{"dpi": self.dpi, **kwargs})


def _done(fig: Any) -> Picture:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    plt.close(fig)
    return Picture(fig)


def _square(ax: Any, lim: float, title: str = "") -> None:
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _log_norm(values: Any) -> Any:
    from matplotlib.colors import LogNorm

    positive = values[values > 0]
    low = float(positive.min()) if positive.size else 1e-3
    return LogNorm(vmin=low, vmax=max(float(values.max()), low * 1.0001))


def _np(x: Tensor) -> Any:
    return x.detach().float().cpu().numpy()


def scatter_panels(
    panels: Sequence[tuple[str, Tensor]],
    reference: Tensor | None = None,
    lim: float = LIM,
    size: float = 2.6,
    point_size: float = 2.0,
) -> Picture:
    """One square panel per ``(title, points [n, 2])``, over the grey ``reference`` if given."""
    fig, axes = _figure(1, len(panels), (size * len(panels), size + 0.3))
    for ax, (title, pts) in zip(axes[0], panels, strict=True):
        if reference is not None:
            r = _np(reference)
            ax.scatter(r[:, 0], r[:, 1], s=1, c=DATA_COLOR, linewidths=0)
        p = _np(pts)
        ax.scatter(p[:, 0], p[:, 1], s=point_size, c=POINT_COLOR, linewidths=0, alpha=0.7)
        _square(ax, lim, title)
    return _done(fig)


def schedule_plot(schedules: Mapping[str, Tensor]) -> Picture:
    """``ᾱ_t`` (signal share) and ``log SNR = log(ᾱ / (1 - ᾱ))`` against ``t``, per schedule."""
    fig, axes = _figure(1, 2, (9, 3.2))
    ax1, ax2 = axes[0]
    for name, ac in schedules.items():
        a = ac.double()
        ax1.plot(_np(a), label=name)
        ax2.plot(_np((a / (1 - a)).log()), label=name)
    ax1.set(xlabel="t", ylabel="ᾱ_t (share of signal variance)", title="signal left")
    ax2.set(xlabel="t", ylabel="log SNR", title="signal-to-noise ratio")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return _done(fig)


def loss_plot(
    losses: Sequence[float] | Mapping[str, Sequence[float]],
    window: int = 50,
    title: str = "training loss",
) -> Picture:
    """Loss per step (faint) and its moving average over ``window`` steps; a dict draws several."""
    runs = losses if isinstance(losses, Mapping) else {"loss": losses}
    fig, axes = _figure(1, 1, (6, 3))
    ax = axes[0, 0]
    for name, values in runs.items():
        v = torch.tensor(list(values), dtype=torch.float64)
        w = max(1, min(window, len(v)))
        smooth = v.unfold(0, w, 1).mean(1) if len(v) >= w else v
        line = ax.plot(
            range(w - 1, w - 1 + len(smooth)), _np(smooth), label=f"{name} (mean of {w})"
        )[0]
        ax.plot(_np(v), alpha=0.2, color=line.get_color())
    ax.set(xlabel="training step", ylabel="loss", title=title)
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _done(fig)


def image_rows(
    rows: Mapping[str, Tensor], titles: Sequence[str] | None = None, scale: float = 0.9
) -> Picture:
    """Rows of images, tiled into one picture: one row per ``label -> images [n, C, H, W]`` in
    ``[-1, 1]`` (rows may differ in ``n``), the label on the left, optional column ``titles``."""
    from course_lib.data.preview import to_display

    labels = list(rows)
    ncols = max(len(v) for v in rows.values())
    first = next(iter(rows.values()))
    h, w, pad = first.shape[-2], first.shape[-1], 2
    canvas = torch.ones(len(labels) * (h + pad) - pad, ncols * (w + pad) - pad, 3)
    for i, label in enumerate(labels):
        pictures = to_display(rows[label]).expand(-1, -1, -1, 3)  # [n, H, W, 3]
        for j, pic in enumerate(pictures):
            canvas[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = pic
    fig, axes = _figure(1, 1, (scale * ncols + 1.4, scale * len(labels) + 0.4))
    ax = axes[0, 0]
    ax.imshow(_np(canvas), interpolation="nearest")
    ax.set_yticks([i * (h + pad) + h / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.set_xticks(
        [j * (w + pad) + w / 2 for j in range(len(titles or []))], list(titles or []), fontsize=7
    )
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return _done(fig)


def curves(
    x: Sequence[float],
    ys: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
) -> Picture:
    """Named curves over the same ``x`` (a measured quantity against a setting)."""
    fig, axes = _figure(1, 1, (6, 3.4))
    ax = axes[0, 0]
    for name, y in ys.items():
        default = "o-" if len(list(x)) <= 30 else "-"
        ax.plot(list(x), list(y), (styles or {}).get(name, default), label=name, markersize=4)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _done(fig)


def grid_points(lim: float = LIM, n: int = 21) -> Tensor:
    """An ``n × n`` grid over ``[-lim, lim]²``: ``[n*n, 2]`` float32 (for vector fields)."""
    g = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    return torch.stack([xx.flatten(), yy.flatten()], 1)


def field_panels(
    panels: Sequence[tuple[str, Tensor, Tensor]],
    reference: Tensor | None = None,
    lim: float = LIM,
    size: float = 3.0,
    particles: Sequence[Tensor | None] | None = None,
) -> Picture:
    """Quiver plots: one panel per ``(title, where [m, 2], arrows [m, 2])``, over the grey
    ``reference``; ``particles[i]`` (``[k, 2]``) drawn as red dots. Every arrow is drawn with the
    same length (most of a grid cell) so directions stay readable near the data; colour is the
    true length on a log scale (dark: short, yellow: long)."""
    fig, axes = _figure(1, len(panels), (size * len(panels), size + 0.3))
    for i, (ax, (title, where, arrows)) in enumerate(zip(axes[0], panels, strict=True)):
        if reference is not None:
            r = _np(reference)
            ax.scatter(r[:, 0], r[:, 1], s=1, c=DATA_COLOR, linewidths=0)
        w, a = _np(where), _np(arrows)
        length = (a**2).sum(1, keepdims=True) ** 0.5  # [m, 1]
        unit = a / (length + 1e-12)
        shown = 0.8 * 2 * lim / max(1.0, len(w) ** 0.5 - 1)  # 80 % of the grid spacing
        ax.quiver(
            w[:, 0],
            w[:, 1],
            unit[:, 0] * shown,
            unit[:, 1] * shown,
            length[:, 0],
            cmap="viridis",
            norm=_log_norm(length),
            angles="xy",
            scale_units="xy",
            scale=1.0,
            width=0.005,
        )
        if particles is not None and particles[i] is not None:
            p = _np(particles[i])
            ax.scatter(p[:, 0], p[:, 1], s=6, c="crimson", linewidths=0)
        _square(ax, lim, title)
    return _done(fig)


def trajectory_panels(
    panels: Sequence[tuple[str, Sequence[Tensor]]],
    reference: Tensor | None = None,
    n: int = 40,
    lim: float = 3.0,
    size: float = 3.2,
) -> Picture:
    """Paths of the first ``n`` particles: one panel per ``(title, states)`` where ``states`` is a
    list of ``[k, 2]`` tensors from noise (hollow circle) to sample (dot)."""
    fig, axes = _figure(1, len(panels), (size * len(panels), size + 0.3))
    for ax, (title, states) in zip(axes[0], panels, strict=True):
        if reference is not None:
            r = _np(reference)
            ax.scatter(r[:, 0], r[:, 1], s=1, c=DATA_COLOR, linewidths=0)
        path = _np(torch.stack([s[:n] for s in states]))  # [T, n, 2]
        for k in range(path.shape[1]):
            ax.plot(path[:, k, 0], path[:, k, 1], lw=0.7, alpha=0.7)
        ax.scatter(
            path[0, :, 0], path[0, :, 1], s=10, facecolors="none", edgecolors="k", linewidths=0.5
        )
        ax.scatter(path[-1, :, 0], path[-1, :, 1], s=8, c="k", linewidths=0)
        _square(ax, lim, title)
    return _done(fig)


class Animation:
    """An inline animation of 2D points: plain HTML, a canvas and a few lines of JavaScript
    (shows in Jupyter through ``_repr_html_``; no extension needed)."""

    def __init__(self, page: str) -> None:
        self.page = page

    def _repr_html_(self) -> str:
        return self.page

    def __len__(self) -> int:
        return len(self.page)


def animate_points(
    frames: Sequence[Tensor],
    reference: Tensor | None = None,
    lim: float = 3.0,
    size: int = 320,
    fps: int = 12,
    max_points: int = 400,
    labels: Sequence[str] | None = None,
) -> Animation:
    """Particles moving through ``frames`` (each ``[n, 2]``, the first ``max_points`` drawn),
    looping, over the grey ``reference``; ``labels[i]`` is printed under frame ``i``.

    Coordinates travel as integers (pixels), so 40 frames of 400 points stay near 100 kB.
    """
    uid = f"anim{abs(hash((len(frames), id(frames)))) % 10**8}"

    def pixels(p: Tensor) -> list[int]:
        q = (
            ((p[:max_points].detach().float().cpu() + lim) / (2 * lim) * size)
            .round()
            .clamp(-5, size + 5)
        )
        q[:, 1] = size - q[:, 1]
        return q.int().flatten().tolist()

    data = {
        "frames": [pixels(f) for f in frames],
        "ref": pixels(reference[:: max(1, len(reference) // 1500)])
        if reference is not None
        else [],
        "labels": list(labels) if labels is not None else [],
    }
    script = f"""
<div style="font:12px sans-serif"><canvas id="{uid}" width="{size}" height="{size}"
 style="border:1px solid #ddd"></canvas><div id="{uid}_l"></div></div>
<script>(function(){{
const d = {json.dumps(data, separators=(",", ":"))};
const c = document.getElementById("{uid}"), g = c.getContext("2d");
const l = document.getElementById("{uid}_l");
let i = 0;
function draw(){{
  g.clearRect(0, 0, {size}, {size});
  g.fillStyle = "#cccccc";
  for (let k = 0; k < d.ref.length; k += 2) g.fillRect(d.ref[k], d.ref[k+1], 1, 1);
  g.fillStyle = "{POINT_COLOR}";
  const f = d.frames[i];
  for (let k = 0; k < f.length; k += 2) g.fillRect(f[k]-1, f[k+1]-1, 3, 3);
  l.textContent = (d.labels[i] || "") + "  (frame " + (i+1) + "/" + d.frames.length + ")";
  i = (i + 1) % d.frames.length;
  setTimeout(draw, i === 0 ? 1200 : {int(1000 / fps)});
}}
draw();
}})();</script>"""
    return Animation(script.strip())


def paths_over_time(
    panels: Sequence[tuple[str, Sequence[int], Sequence[Tensor]]],
    n: int = 30,
    coordinate: int = 0,
    size: tuple[float, float] = (3.6, 3.0),
) -> Picture:
    """One coordinate of particles against the timestep, as in Song et al. (2021, figure 1): one
    panel per ``(title, ts, states)`` where ``states[i]`` (``[k, D]``) is the state at timestep
    ``ts[i]``; the first ``n`` particles are drawn. The t axis always runs from 0 (data, left) to
    ``max(ts)`` (noise, right)."""
    fig, axes = _figure(1, len(panels), (size[0] * len(panels), size[1]))
    for ax, (title, ts, states) in zip(axes[0], panels, strict=True):
        path = _np(torch.stack([s[:n, coordinate] for s in states]))  # [T, n]
        ax.plot(list(ts), path, lw=0.7, alpha=0.8)
        ax.set(xlabel="t", ylabel=f"coordinate {coordinate}", title=title)
        ax.set_xlim(0, max(ts))
        ax.set_ylim(-3.2, 3.2)
    return _done(fig)
