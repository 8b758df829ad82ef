"""The note's "constant memory" claim for backsolve (C15), measured with tracemalloc.

Memory, unlike time, is deterministic enough for a test: the peak of a backsolve
gradient must not grow with the number of solver steps, while the interpolating
adjoint (which keeps the forward dense output) must — which shows the measurement can
tell the two apart.
"""

import tracemalloc

import pytest

from adjoint_sym import FinalLoss, ODESystem, Problem, gradient

OSCILLATOR = ODESystem.from_strings(["x", "y"], ["w"], "t", ["y", "-w**2*x"])


def _peak_kib(method: str, t1: float) -> tuple[float, int]:
    prob = Problem(OSCILLATOR, [1.0, 0.0], {"w": 2.0}, 0.0, t1, FinalLoss("x**2"))
    gradient(prob, method)  # compile outside the measurement
    tracemalloc.start()
    try:
        g = gradient(prob, method)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / 1024, g.stats["steps_forward"]


@pytest.mark.filterwarnings("ignore:backsolve")
def test_backsolve_memory_is_flat_in_the_number_of_steps_and_interpolating_is_not():
    short_peak, short_steps = _peak_kib("backsolve", 10.0)
    long_peak, long_steps = _peak_kib("backsolve", 300.0)
    assert long_steps > 20 * short_steps
    # Flat: 30x the steps may not even double the peak (a few KiB of bookkeeping).
    assert long_peak < 2 * short_peak + 16, (short_peak, long_peak)
    dense_short, _ = _peak_kib("interpolating", 10.0)
    dense_long, _ = _peak_kib("interpolating", 300.0)
    assert dense_long > 10 * dense_short  # the dense output grows with the steps
