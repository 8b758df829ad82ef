"""The budgets: defaults, validation, nesting, and the sentence that says how to raise one."""

from __future__ import annotations

import time

import pytest

from adjoint_sym import InvalidModelError, Limits, limits
from adjoint_sym._limits import LIMIT_NAMES, current_limits, how_to_raise


def test_limits_hold_inside_the_block_only():
    before = current_limits()
    with limits(max_steps=7, max_states=3) as active:
        assert (
            (active.max_steps, active.max_states) == (7, 3) == (current_limits().max_steps, current_limits().max_states)
        )
        with limits(max_states=4):
            assert current_limits().max_steps == 7 and current_limits().max_states == 4  # the rest inherited
    assert current_limits() == before == Limits()


def test_a_nested_time_limit_never_extends_the_outer_deadline():
    with limits(time_limit=1.0) as outer:
        with limits(time_limit=1000.0) as inner:
            assert inner.deadline == outer.deadline
        with limits(time_limit=0.01) as shorter:
            assert shorter.deadline < outer.deadline
        assert 0.0 < current_limits().seconds_left() <= 1.0
    assert current_limits().seconds_left() is None
    start = time.perf_counter()
    with limits(time_limit=0.5) as active:
        assert active.deadline >= start + 0.5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_step": 5}, "unknown limit 'max_step'; did you mean 'max_steps'?"),
        ({"max_steps": 0}, "limit max_steps must be a positive integer, got 0"),
        ({"max_states": 2.0}, "limit max_states must be a positive integer, got 2.0"),
        ({"max_params": True}, "limit max_params must be a positive integer, got True"),
        ({"time_limit": 0}, "limit time_limit must be a positive number of seconds or None, got 0"),
        ({"time_limit": float("inf")}, "limit time_limit must be a positive number of seconds or None, got inf"),
    ],
)
def test_bad_limits_are_named(values, message):
    with pytest.raises(InvalidModelError) as info, limits(**values):
        pass
    assert message in str(info.value)


def test_every_limit_says_how_to_raise_it_in_each_interface():
    for name in LIMIT_NAMES:
        sentence = how_to_raise(name)
        assert f"adjoint_sym.limits({name}=...)" in sentence and f"{name} = ... under [limits]" in sentence
    assert "--max-steps ..." in how_to_raise("max_steps") and "--time-limit ..." in how_to_raise("time_limit")
    assert "--limit max_observations=..." in how_to_raise("max_observations")
