"""How the soak benchmark reads memory samples: growth after warm-up, and a one-off step told
apart from a steady climb."""

from __future__ import annotations

import pytest

from steadyeye.bench.soak import _summarise
from steadyeye.tally import Tally


def samples(series: list[float]) -> list[tuple[float, dict[str, float]]]:
    return [(60.0 * minute, {"svc": mb}) for minute, mb in enumerate(series)]


@pytest.mark.parametrize(
    ("case", "series", "growth", "second_half"),
    [
        ("flat", [50, 100, 100, 100, 100, 100], 0.0, 0.0),
        ("warm-up excluded", [10, 100, 100, 100, 100, 100], 0.0, 0.0),
        ("one step, then flat", [50, 100, 120, 120, 120, 120], 20.0, 0.0),
        ("a steady climb", [50, 100, 110, 120, 130, 140], 40.0, 16.67),
    ],
)
def test_growth_is_measured_after_warm_up(case, series, growth, second_half):
    rss = _summarise(samples(series), warmup_s=60.0, tally=Tally("demo"))["rss"]["svc"]
    assert (rss["growth_pct"], rss["second_half_growth_pct"]) == (growth, second_half), case
    assert rss["start_mb"] == series[1]
