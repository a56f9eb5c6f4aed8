"""Level text: converting each distinct value (or each category) once gives the text that
converting every value gives; the design of distinct rows equals the design row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_distinct_rows_group_as_pandas_does(data):
    """The same partition of the rows as pandas' group-by (missing values a group of their
    own, categoricals with unused or missing levels), first rows the first of each group;
    wide keys that would overflow one integer are made dense on the way."""
    n = data.draw(st.integers(1, 60))
    pick = lambda values: data.draw(st.lists(st.sampled_from(values), min_size=n,  # noqa: E731
                                             max_size=n))
    frame = pd.DataFrame({
        "year": pick([2019, 2020, 2021]),
        "sex": pd.Categorical(pick(["F", "M", None]), categories=["F", "M", "X"]),
        "district": pick(["D1", "D2", None]),
        "special_group": pick([True, False]),
        "cost": pick([1.5, np.nan, 3.0]),
    })
    for i in range(data.draw(st.integers(0, 6))):  # 2**64 and more key combinations
        frame[f"wide{i}"] = data.draw(st.lists(st.integers(0, 2**20), min_size=n, max_size=n))
    columns = tuple(c for c in frame if data.draw(st.booleans())) or ("year",)
    codes, first = distinct_rows(frame, (*columns, "absent"))
    want = frame.groupby(list(columns), sort=False, observed=True, dropna=False).ngroup()
    want = want.to_numpy()
    # the same partition: a one-to-one map between the two numberings
    pairs = set(zip(codes.tolist(), want.tolist(), strict=True))
    assert len(pairs) == len(set(codes.tolist())) == len(set(want.tolist()))
    assert sorted(first.tolist()) == [int(np.flatnonzero(codes == c)[0]) for c in
                                      sorted(set(codes.tolist()), key=lambda c: np.flatnonzero(
                                          codes == c)[0])]
    assert (codes[first] == np.arange(len(first))).all()


def test_distinct_rows_keep_apart_what_an_overflowing_key_would_merge():
    """Thirteen columns of 32 values after a column of two: one integer key would multiply
    the first column's code by 2**65, which wraps to 0 in 64 bits and merges rows that
    differ only there."""
    i = np.arange(64)
    frame = pd.DataFrame({"first": i // 32} | {f"c{k}": (i * (2 * k + 1)) % 32 for k in range(13)})
    codes, first = distinct_rows(frame, tuple(frame))
    assert len(first) == 64 and len(set(codes.tolist())) == 64
