"""Level text: converting each distinct value (or each category) once gives the text that
converting every value gives; the design of distinct rows equals the design row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models.features import _distinct_text, _level_text, distinct_rows


@pytest.mark.parametrize("values", [
    pd.Series(pd.Categorical(["M", "F", "M"])),
    pd.Series(pd.Categorical(["M", None, "M"])),
    pd.Series(pd.Categorical([1, 2, 1])),
    pd.Series(pd.Categorical(["u", "r"], categories=["u", "r", "x"])),
    pd.Series(["a", "b", "a"]),
    pd.Series([True, False]),
    np.array([3, 1, 3]),
    np.array(["a", None, "b"], dtype=object),
    np.array([1.5, np.nan]),
])
def test_level_text_is_each_value_as_text(values):
    expected = np.asarray(pd.Series(values).astype(str).to_numpy(), dtype=str)
    np.testing.assert_array_equal(_level_text(values), expected)
    assert _distinct_text(values) == set(expected)  # the levels, without every row's text


def test_distinct_rows_number_every_row_and_point_at_the_first():
    frame = pd.DataFrame({"year": [2019, 2020, 2019, 2019], "sex": ["F", "M", "F", "M"],
                          "cost": [1.0, 2.0, 3.0, 4.0]})
    codes, first = distinct_rows(frame, ("year", "age", "sex"))
    assert len(first) == 3
    rebuilt = frame.iloc[first][["year", "sex"]].to_numpy()[codes]
    np.testing.assert_array_equal(rebuilt, frame[["year", "sex"]].to_numpy())
