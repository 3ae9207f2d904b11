"""Pictures of runs and comparisons: confusion matrix, predicted against true values, per-label F1, loss curves,
metric bars, written as PNG files."""

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..data.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL
from ..run_folder import split_of


class RunPlot(NamedTuple):
    file: str  # in the run folder
    copy_prefix: str  # a comparison report's copy: <prefix>_<variant>.png
    title: str  # the report's section


LEGEND_LABEL_WIDTH = 28  # characters per line of a legend label: longer ones wrap, so the legend fits beside

# The picture of a run's scored split that each task shape gets (besides loss.png).
PER_RUN_PLOT = {
    SINGLE_LABEL: RunPlot("confusion_matrix.png", "confusion", "Confusion matrices"),
    MULTI_LABEL: RunPlot("label_f1.png", "label_f1", "F1 of each label"),
    REGRESSION: RunPlot("predicted_vs_true.png", "predicted_vs_true", "Predicted against true values"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _legend_beside(ax, **kwargs):
    """The axes' legend to the right of the plot, top-aligned, long labels wrapped; `tight_layout` makes room for it.
    None when nothing is labelled (runs without a logged loss)."""
    import textwrap

    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    labels = [textwrap.fill(label, LEGEND_LABEL_WIDTH) for label in labels]
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kwargs)


def _save(fig, path: str | Path) -> Path:
    """Lay out, write (atomically) and close a figure."""
    import matplotlib.pyplot as plt

    from ..files import atomic_output

    fig.tight_layout()
    with atomic_output(path) as temporary:
        fig.savefig(temporary, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(path)


def plot_confusion_matrix(gold, predicted, label_names: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalized confusion matrix with counts, gold labels on rows."""
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    counts = confusion_matrix(gold, predicted, labels=list(range(len(label_names))))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.7 * len(label_names) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold class")
    ticks = range(len(label_names))
    ax.set_xticks(ticks, label_names, rotation=45, ha="right")
    ax.set_yticks(ticks, label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for row in ticks:
        for col in ticks:
            color = "white" if shares[row, col] > 0.6 else "black"
            ax.text(
                col,
                row,
                f"{counts[row, col]}\n{shares[row, col]:.0%}",
                ha="center",
                va="center",
                color=color,
                fontsize=8,
            )
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title} (accuracy {accuracy:.2%})".strip())
    return _save(fig, path)


def plot_regression(gold, predicted, path: str | Path, title: str = "") -> Path:
    """Predicted against true values, one dot per example, with the diagonal of perfect predictions."""
    plt = _pyplot()
    gold, predicted = np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(gold, predicted, s=6, alpha=0.35, edgecolors="none")
    low, high = float(min(gold.min(), predicted.min())), float(max(gold.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--", label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.legend(loc="upper left")
    pearson = float(np.corrcoef(gold, predicted)[0, 1]) if np.ptp(gold) and np.ptp(predicted) else float("nan")
    ax.set_title(f"{title} (Pearson {pearson:.3f})".strip())
    return _save(fig, path)


def plot_label_f1(per_label: list[dict], path: str | Path, title: str = "") -> Path:
    """Multi-label: the F1 of each label (`hfclf.data.scoring.per_label_rows`), best first, with its gold count."""
    plt = _pyplot()
    rows = sorted(per_label, key=lambda row: -row["f1"])
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.24 * len(rows)))
    positions = np.arange(len(rows))
    drawn = ax.barh(positions, [row["f1"] for row in rows], color="tab:blue")
    ax.bar_label(drawn, labels=[f"{row['f1']:.2f} (n={row['support']})" for row in rows], fontsize=7, padding=2)
    ax.set_yticks(positions, [row["label"] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("F1")
    ax.grid(axis="x", alpha=0.3)
    macro = float(np.mean([row["f1"] for row in rows]))
    ax.set_title(f"{title} (macro F1 {macro:.3f})".strip())
    return _save(fig, path)


def loss_curves(log_history: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """(step, loss) points of the training and evaluation loss from `Trainer.state.log_history`."""
    curves = {"train": [], "eval": []}
    for entry in log_history:
        if "loss" in entry:
            curves["train"].append((entry["step"], entry["loss"]))
        if "eval_loss" in entry:
            curves["eval"].append((entry["step"], entry["eval_loss"]))
    return curves


def plot_loss(log_history: list[dict], path: str | Path, title: str = "", steps_per_epoch: float | None = None) -> Path:
    """Training loss per logging step and evaluation loss per evaluation, on one step axis."""
    plt = _pyplot()
    curves = loss_curves(log_history)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if curves["train"]:
        ax.plot(*zip(*curves["train"]), label="train loss", color="tab:blue", alpha=0.8)
    if curves["eval"]:
        ax.plot(*zip(*curves["eval"]), label="validation loss", color="tab:orange", marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if steps_per_epoch:
        top = ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch))
        top.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


def plot_metric_bars(rows: list[dict], metric: str, path: str | Path, title: str = "", percent: bool = True) -> Path:
    """Variants side by side: `metric` on validation (`eval_<metric>`) and on the reported split (test where there
    is one), in % with `percent`.

    Up to 8 variants with short names stand as columns; more, or longer names, lie as rows, one under the other, so
    every name stays readable. The legend stands beside the bars, never over them.
    """
    plt = _pyplot()
    names = [row["variant"] for row in rows]
    positions = np.arange(len(rows))
    split = rows[0]["split"]
    scale, top = (100, 100.0) if percent else (1, 1.0)
    bars = [("validation", [scale * row[f"eval_{metric}"] for row in rows])]
    if split != "eval":
        bars.append((split_of(split), [scale * row[metric] for row in rows]))
    width = 0.8 / len(bars)
    low, high = min(v for _, values in bars for v in values), max(v for _, values in bars for v in values)
    if low < 0 or high > top:  # a negative correlation, an error above 1: every bar whole, from 0
        limits = (min(low, 0.0) - top / 10, max(high, 0.0) + top / 20)
    else:  # zoomed in on the differences, within the metric's range
        limits = (max(0.0, low - top / 10), min(top, high + top / 20))
    horizontal = len(rows) > 8 or max(len(name) for name in names) > 16
    if horizontal:
        fig, ax = plt.subplots(figsize=(9, 1.2 + 0.22 * len(rows) * len(bars)))
    else:
        fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(rows) + 2), 4.2))
    for i, (label, values) in enumerate(bars):
        offset = (i - (len(bars) - 1) / 2) * width
        if horizontal:  # top to bottom in table order
            drawn = ax.barh(positions + offset, values, width, label=label)
        else:
            drawn = ax.bar(positions + offset, values, width, label=label)
        digits = (2 if horizontal else 1) + (0 if percent else 2)
        ax.bar_label(drawn, fmt=f"%.{digits}f", fontsize=7 if horizontal else 8, padding=2)
    axis_label = f"{metric} (%)" if percent else metric
    if horizontal:
        ax.set_xlim(*limits)
        ax.set_yticks(positions, names, fontsize=8)
        ax.invert_yaxis()
        ax.margins(y=0.005)
        ax.set_xlabel(axis_label)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_ylim(*limits)
        ax.set_xticks(positions, names, rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center")
        ax.set_ylabel(axis_label)
        ax.grid(axis="y", alpha=0.3)
    _legend_beside(ax)
    ax.set_title(title)
    return _save(fig, path)


COST_PLOT = "cost_accuracy.png"
# The costs a comparison plots its main metric against: (row key, axis label, scale).
COST_AXES = (
    ("latency_ms", "inference latency, one text (ms, median)", 1),
    ("texts_per_s", "inference throughput, batched (texts/s)", 1),
    ("parameters", "parameters (millions)", 1e-6),
    ("train_minutes", "train time (minutes)", 1),
)


def pareto_front(costs, scores, cheaper_is_lower: bool = True) -> list[int]:
    """Indices of the points no other point beats on both cost and score, cheapest first."""
    points = [(c if cheaper_is_lower else -c, -s, i) for i, (c, s) in enumerate(zip(costs, scores))]
    front, best = [], None
    for cost, negative_score, i in sorted(points):
        if best is None or -negative_score > best:
            front.append(i)
            best = -negative_score
    return front


def plot_cost_accuracy(rows: list[dict], metric: str, path: str | Path, percent: bool = True, title: str = "") -> Path:
    """The main metric against each measured cost that tells the variants apart (one panel each; latency always),
    every variant a point and the Pareto front (no variant both cheaper and better) joined by a line. Up to 8
    variants are all named; of more, the front's, so that the names stay legible (the rest are in the table)."""
    plt = _pyplot()
    measured = [axis for axis in COST_AXES if all(row.get(axis[0]) is not None for row in rows)]
    axes_shown = [axis for i, axis in enumerate(measured) if i == 0 or len({row[axis[0]] for row in rows}) > 1]
    fig, axes = plt.subplots(1, len(axes_shown), figsize=(4.2 * len(axes_shown), 4.2), squeeze=False)
    scores = [(100 if percent else 1) * row[metric] for row in rows]
    panels = []
    for ax, (key, label, scale) in zip(axes[0], axes_shown):
        costs = [scale * row[key] for row in rows]
        front = pareto_front(costs, scores, cheaper_is_lower=key != "texts_per_s")
        panels.append((ax, costs, front))
        ax.scatter(costs, scores, color="gray", zorder=2)
        ax.plot([costs[i] for i in front], [scores[i] for i in front], color="C3", marker="o", zorder=3,
                label="Pareto front")  # fmt: skip
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} (%)" if percent else metric)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{title}: {metric} against cost")
    fig.tight_layout()  # the names are placed where the final layout puts the points
    for ax, costs, front in panels:  # the front's names first: they get the best places
        named = [*front, *(i for i in range(len(rows)) if i not in front)] if len(rows) <= 8 else front
        _name_points(ax, [(costs[i], scores[i]) for i in named], [rows[i]["variant"] for i in named])
    return _save(fig, path)


# Where a point's name may go, in points from the point (right, left, above, below), with its text alignment.
NAME_PLACES = (
    (4, 1, "left", "bottom"),
    (4, -1, "left", "top"),
    (-4, 1, "right", "bottom"),
    (-4, -1, "right", "top"),
    (0, 5, "center", "bottom"),
    (0, -5, "center", "top"),
)


def _name_points(ax, points, names, fontsize: int = 7) -> None:
    """Write each name beside its point, at the first of `NAME_PLACES` that stays inside the axes and covers no
    earlier name, no point and not the legend; where every place covers something, at the one that covers least."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    marker = 4 * ax.figure.dpi / 72  # half a marker's width, in pixels
    pixels = ax.transData.transform(points)
    taken = [Bbox.from_bounds(x - marker, y - marker, 2 * marker, 2 * marker) for x, y in pixels]
    if ax.get_legend() is not None:
        taken.append(ax.get_legend().get_window_extent(renderer))

    def overlap(a, b) -> float:  # the area two boxes share
        shared = Bbox.intersection(a, b)
        return 0.0 if shared is None else shared.width * shared.height

    def covered(box) -> float:
        return box.width * box.height - overlap(box, frame) + sum(overlap(box, other) for other in taken)

    for point, name in zip(points, names):
        texts = []
        for dx, dy, ha, va in NAME_PLACES:
            text = ax.annotate(name, point, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, size=fontsize)
            text.set_in_layout(False)  # inside the axes: the layout stays the one the points were placed in
            texts.append((covered(text.get_window_extent(renderer)), len(texts), text))
            if texts[-1][0] == 0:
                break
        _, _, best = min(texts)
        for _, _, text in texts:
            if text is not best:
                text.remove()
        taken.append(best.get_window_extent(renderer))


LEARNING_CURVE_PLOT = "learning_curves.png"


def plot_learning_curves(
    curves, path: str | Path, metric: str, percent: bool = True, title: str = "", targets: tuple = ()
) -> Path:
    """Each curve's mean score by training-set size (log scale, ticks at the measured sizes), with a band for the 95%
    confidence interval of the mean where a size ran several seeds, and the `targets` as dotted lines."""
    from matplotlib.ticker import NullLocator

    plt = _pyplot()
    scale = 100 if percent else 1
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for curve in curves:
        sizes = [size for size, _ in curve.points]
        means = [scale * arm.mean for _, arm in curve.points]
        (line,) = ax.plot(sizes, means, marker="o", label=curve.name)
        intervals = [arm.interval() or (arm.mean, arm.mean) for _, arm in curve.points]
        ax.fill_between(sizes, *(np.array(intervals).T * scale), color=line.get_color(), alpha=0.2, linewidth=0)
    for target in targets:
        ax.axhline(scale * target, color="gray", linestyle=":", linewidth=1)
        text = f"target {scale * target:.2f}" if percent else f"target {target:.4f}"
        ax.annotate(text, (1, scale * target), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7)
    ax.set_xscale("log")
    measured = sorted({size for curve in curves for size, _ in curve.points})
    ax.set_xticks(measured, [f"{size:,}" for size in measured])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("training examples")
    ax.set_ylabel(f"{metric} (%)" if percent else metric)
    ax.grid(alpha=0.3, which="both")
    _legend_beside(ax, fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def plot_loss_overlay(histories: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """Train loss (solid) and eval loss (dashed, dots) of every variant on one step axis, one color per variant.

    The legend names each variant once, beside the plot, so it never covers the curves.
    """
    from matplotlib.lines import Line2D

    plt = _pyplot()
    count = len(histories)
    fig, ax = plt.subplots(figsize=(11, max(4.8, 0.9 + 0.2 * count)))
    if count <= 10:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    else:
        colors = [plt.get_cmap("turbo")(x) for x in np.linspace(0.05, 0.95, count)]
    for i, (name, history) in enumerate(histories.items()):
        curves = loss_curves(history)
        color = colors[i % len(colors)]
        if curves["train"]:
            ax.plot(*zip(*curves["train"]), color=color, alpha=0.7, linewidth=1, label=name)
        if curves["eval"]:
            label = "_" if curves["train"] else name  # one legend entry per variant
            ax.plot(*zip(*curves["eval"]), color=color, linestyle="--", marker="o", markersize=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    styles = [
        Line2D([], [], color="gray", label="train"),
        Line2D([], [], color="gray", ls="--", marker="o", label="validation"),
    ]
    ax.add_artist(ax.legend(handles=styles, fontsize=8, loc="upper right"))
    # The axes' own legend (the last one made) is the one `tight_layout` makes room for.
    _legend_beside(ax, fontsize=8)
    ax.set_title(title)
    return _save(fig, path)
