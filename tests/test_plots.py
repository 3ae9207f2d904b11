"""Comparison plots stay readable as the number of variants grows."""

import pytest

from hfclf import plots


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures that would be written, to inspect them."""
    kept = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.append(fig) or path)
    return kept


def rows(count: int) -> list[dict]:
    return [
        {"variant": f"variant-{i}", "split": "test", "accuracy": 0.8 + i / 1000, "eval_accuracy": 0.79 + i / 1000}
        for i in range(count)
    ]


@pytest.mark.parametrize("count, horizontal", [(3, False), (8, False), (20, True)])
def test_accuracy_bars_turn_horizontal_for_many_variants(figures, count, horizontal):
    plots.plot_accuracy_bars(rows(count), "unused.png", "title")
    (ax,) = figures[0].axes
    labels = [t.get_text() for t in (ax.get_yticklabels() if horizontal else ax.get_xticklabels())]
    assert labels == [f"variant-{i}" for i in range(count)]
    width, height = figures[0].get_size_inches()
    assert (height > width) == horizontal
    if horizontal:  # first variant on top, as in the table
        assert ax.get_ylim()[0] > ax.get_ylim()[1]


def test_loss_overlay_names_each_variant_once_outside_the_curves(figures):
    history = [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.5}, {"step": 2, "eval_loss": 0.6}]
    histories = {f"variant-{i}": history for i in range(15)}
    plots.plot_loss_overlay(histories, "unused.png", "title")
    (ax,) = figures[0].axes
    legends = [child for child in ax.get_children() if child.__class__.__name__ == "Legend"]
    texts = sorted(t.get_text() for legend in legends for t in legend.get_texts())
    assert texts == sorted([*histories, "train", "eval"])
    colors = {line.get_color() for line in ax.get_lines()}
    assert len(colors) == 15  # no color repeats across variants
