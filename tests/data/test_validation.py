"""check_whole_number: the one check of counts and steps (tune options, job specs, reported steps)."""

import numpy as np
import pytest

from workbench.data import InvalidParameterError, check_whole_number


@pytest.mark.parametrize(
    "value, low, high", [(0, 0, None), (5, 1, None), (np.int64(3), 1, 3), (64, 1, 64), (-7, None, None)]
)
def test_whole_numbers_in_range_come_back_as_int(value, low, high):
    out = check_whole_number(value, "trials", low, high)
    assert out == value and type(out) is int


@pytest.mark.parametrize(
    "value, low, high, message",
    [
        (True, 1, None, "trials must be a whole number >= 1, got True"),
        (2.0, 1, None, "trials must be a whole number >= 1, got 2.0"),
        ("3", 1, None, "trials must be a whole number >= 1, got '3'"),
        (0, 1, None, "trials must be a whole number >= 1, got 0"),
        (65, 1, 64, "trials must be a whole number >= 1 and <= 64, got 65"),
        (None, 0, None, "trials must be a whole number >= 0, got None"),
        (1.5, None, None, "trials must be a whole number, got 1.5"),
        (11, None, 10, "trials must be a whole number <= 10, got 11"),
    ],
)
def test_anything_else_is_an_error_naming_the_value_and_the_range(value, low, high, message):
    with pytest.raises(InvalidParameterError) as info:
        check_whole_number(value, "trials", low, high)
    assert str(info.value) == message and isinstance(info.value, ValueError)
