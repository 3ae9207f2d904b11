"""Data-size curves: how a variant's score grows with its training set.

A comparison whose variants differ in `max_train_samples` or `train_fraction` draws one curve per setting of the other
flags (the seed aside): at each training-set size, the mean main metric over seeds with its 95% confidence interval,
and the smallest measured size at which the mean reaches a target score.
"""

from dataclasses import dataclass

from .significance import Arm

SIZE_FLAGS = ("max_train_samples", "train_fraction")


@dataclass
class Curve:
    name: str
    points: list[tuple[int, Arm]]  # (training examples, the arm trained on that many), smallest first

    def size_needed(self, target: float, greater_is_better: bool = True) -> int | None:
        """The smallest measured training-set size whose mean score reaches `target` (None: none does)."""
        for size, arm in self.points:
            if (arm.mean >= target) if greater_is_better else (arm.mean <= target):
                return size
        return None


def size_flag(variants: list[dict], flags_of) -> str | None:
    """The size flag that the variants vary, if any."""
    for flag in SIZE_FLAGS:
        if len({str(flags_of(variant).get(flag)) for variant in variants}) > 1:
            return flag
    return None


def curves_of(arms: list[Arm], variants: list[dict], flags_of, flag: str) -> list[Curve]:
    """One curve per setting of the flags other than the seed and `flag`, named by the flags that tell the curves
    apart (`pooling=mean`; those a curve does not set are left out); an arm's size is the number of examples its runs
    trained on."""
    by_name = {variant["name"]: variant for variant in variants}
    settings = {}
    for arm in arms:
        flags = {key: value for key, value in flags_of(by_name[arm.variants[0]]).items() if key not in (flag, "seed")}
        settings.setdefault(str(sorted(flags.items())), (flags, []))[1].append(arm)
    differing = sorted({key for flags, _ in settings.values() for key in flags
                        if len({str(f.get(key)) for f, _ in settings.values()}) > 1})  # fmt: skip
    curves = []
    for flags, members in settings.values():
        name = ", ".join(f"{key}={flags[key]}" for key in differing if key in flags) or "all variants"
        points = sorted(((arm.runs[0].data_sizes.get("train", 0), arm) for arm in members), key=lambda p: p[0])
        curves.append(Curve(name, points))
    return curves


def default_targets(curves: list[Curve], greater_is_better: bool = True) -> list[float]:
    """Scores to reach when the config names none: 95% and 99% of the best mean score of the grid."""
    best = max(arm.mean for curve in curves for _, arm in curve.points)
    return [0.95 * best, 0.99 * best] if greater_is_better else []
