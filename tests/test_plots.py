"""Comparison plots stay readable as the number of variants grows."""

import pytest

from hfclf.reporting import plots


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures that would be written, to inspect them."""
    kept = []

    def keep(fig, path):
        fig.tight_layout()  # as `_save` does before writing
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return kept


def legends_inside_the_figure(fig) -> list:
    """Every legend of the figure's axes, each asserted to lie within the figure (nothing cut off in the PNG)."""
    renderer = fig.canvas.get_renderer()
    legends = [child for ax in fig.axes for child in ax.get_children() if child.__class__.__name__ == "Legend"]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, (box, fig.bbox)
        assert fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1, (box, fig.bbox)
    return legends


def rows(count: int) -> list[dict]:
    return [
        {"variant": f"variant-{i}", "split": "test", "accuracy": 0.8 + i / 1000, "eval_accuracy": 0.79 + i / 1000}
        for i in range(count)
    ]


@pytest.mark.parametrize("count, horizontal", [(3, False), (8, False), (9, True), (20, True)])
def test_metric_bars_turn_horizontal_for_many_variants(figures, count, horizontal):
    plots.plot_metric_bars(rows(count), "accuracy", "unused.png", "title")
    (ax,) = figures[0].axes
    labels = [t.get_text() for t in (ax.get_yticklabels() if horizontal else ax.get_xticklabels())]
    assert labels == [f"variant-{i}" for i in range(count)]
    if horizontal:  # first variant on top, as in the table
        assert ax.get_ylim()[0] > ax.get_ylim()[1]
    (legend,) = legends_inside_the_figure(figures[0])
    assert [t.get_text() for t in legend.get_texts()] == ["validation", "test"]


def test_metric_bars_of_long_names_lie_as_rows(figures):
    """Five variants named by several grid values: rows, every name whole, the legend beside the bars."""
    bars = rows(5)
    for i, row in enumerate(bars):
        row["variant"] = f"attention-learningrate3e-05-maxtrainsamples{1000 * (i + 1)}-seed42"
    plots.plot_metric_bars(bars, "accuracy", "unused.png", "title")
    (ax,) = figures[0].axes
    assert [t.get_text() for t in ax.get_yticklabels()] == [row["variant"] for row in bars]
    renderer = figures[0].canvas.get_renderer()
    (legend,) = legends_inside_the_figure(figures[0])
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1  # beside, not over, the bars
    for label in ax.get_yticklabels():
        assert label.get_window_extent(renderer).x0 >= figures[0].bbox.x0 - 1  # not cut off on the left


@pytest.mark.parametrize("count", [3, 12])
def test_cost_plot_shows_the_costs_that_differ_and_names_that_stay_legible(figures, count):
    bars = rows(count)
    for i, row in enumerate(bars):  # the same model size everywhere: no panel for it
        row.update(latency_ms=1.0 + i, texts_per_s=100.0 - i, parameters=22_000_000, train_minutes=2.0 + i % 3)
        row["accuracy"] = 0.8 + (i % 4) / 100  # the first four are the latency front
    plots.plot_cost_accuracy(bars, "accuracy", "unused.png", True, "title")
    axes = figures[0].axes
    assert [ax.get_xlabel().split(" (")[0] for ax in axes] == [
        "inference latency, one text",
        "inference throughput, batched",
        "train time",
    ]
    front = plots.pareto_front([row["latency_ms"] for row in bars], [row["accuracy"] for row in bars])
    named = sorted(text.get_text() for text in axes[0].texts)
    assert named == sorted(bars[i]["variant"] for i in (range(count) if count <= 8 else front))
    assert len(named) == min(count, 4 if count > 8 else count)


@pytest.mark.parametrize("values", [(-0.150, -0.177, -0.119), (-0.2, 0.3, 0.1), (0.4, 1.7, 2.5)])
def test_metric_bars_show_every_value_of_an_unbounded_metric(figures, values):
    """A negative correlation or an error above 1 (Pearson, MAE: not percentages) stays inside the axis."""
    bars = [{"variant": f"v{i}", "split": "test", "pearson": v, "eval_pearson": v / 2} for i, v in enumerate(values)]
    plots.plot_metric_bars(bars, "pearson", "unused.png", "title", percent=False)
    (ax,) = figures[0].axes
    low, high = ax.get_ylim()
    assert low <= min(0.0, *values, *(v / 2 for v in values)) and high >= max(0.0, *values)


@pytest.mark.parametrize("count", [1, 3, 15, 49])
def test_loss_overlay_names_each_variant_once_outside_the_curves(figures, count):
    history = [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.5}, {"step": 2, "eval_loss": 0.6}]
    histories = {f"variant-{i}": history for i in range(count)}
    plots.plot_loss_overlay(histories, "unused.png", "title")
    (ax,) = figures[0].axes
    legends = legends_inside_the_figure(figures[0])
    texts = sorted(t.get_text() for legend in legends for t in legend.get_texts())
    assert texts == sorted([*histories, "train", "validation"])  # as the report's tables name the split
    colors = {str(line.get_color()) for line in ax.get_lines()}
    assert len(colors) == count  # no color repeats across variants


def test_long_curve_names_wrap_inside_the_figure(figures):
    """Curves named by several flags (`arch=lstm, embedding_dim=16, ...`) keep their legend within the figure."""
    from hfclf.reporting.curves import Curve
    from hfclf.reporting.significance import Arm

    names = [
        "arch=lstm, embedding_dim=16, lstm_hidden_size=16, word_vectors=False, lstm_layers=2, bidirectional=True",
        "arch=pooled, model=/home/someone/models/a-tiny-random-bert-encoder-for-tests, pooling=attention",
    ]
    curves = [
        Curve(name, [(size, Arm(name, [name], [], [], [0.5 + size / 1000, 0.6])) for size in (32, 64)])
        for name in names
    ]
    plots.plot_learning_curves(curves, "unused.png", "accuracy", True, "title", targets=[0.55])
    (ax,) = figures[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64"]  # the measured sizes, not powers of ten
    assert [t.get_text() for t in ax.texts] == ["target 55.00"]
    (legend,) = legends_inside_the_figure(figures[0])
    labels = [text.get_text() for text in legend.get_texts()]
    assert ["".join(label.split()) for label in labels] == ["".join(name.split()) for name in names]  # all of it
    assert max(len(line) for label in labels for line in label.splitlines()) <= plots.LEGEND_LABEL_WIDTH


def test_cost_plot_names_lie_inside_their_panel_and_apart(figures):
    """Eight close points with long names (a learning-curve grid over three seeds): every name inside its panel,
    none over another name, a point or the legend."""
    latency = [11, 15, 14, 13, 27, 67, 41, 37]
    accuracy = [87.8, 87.5, 86.7, 84.8, 83.5, 83.7, 79.3, 78.2]
    sizes = [8000] * 3 + [2000] * 3 + [500] * 2
    bars = [
        {"variant": f"maxtrainsamples{n}-seed{42 + i % 3}", "accuracy": a / 100, "latency_ms": t, "train_minutes": i}
        for i, (n, a, t) in enumerate(zip(sizes, accuracy, latency))
    ]
    plots.plot_cost_accuracy(bars, "accuracy", "unused.png", True, "title")
    renderer = figures[0].canvas.get_renderer()
    for ax in figures[0].axes:
        frame = ax.get_window_extent(renderer)
        names = [text.get_window_extent(renderer) for text in ax.texts]
        points = ax.transData.transform(ax.collections[0].get_offsets())
        legend = ax.get_legend().get_window_extent(renderer) if ax.get_legend() else None
        assert len(names) == 8
        for i, box in enumerate(names):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, box
            assert not any(box.overlaps(other) for other in names[i + 1 :]), ax.texts[i].get_text()
            assert not any(box.contains(x, y) for x, y in points), ax.texts[i].get_text()
            assert legend is None or not box.overlaps(legend), ax.texts[i].get_text()
