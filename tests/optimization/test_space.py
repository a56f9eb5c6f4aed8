"""A plan space with a bad value is refused on reading with one line naming the file and
the key (the CLI prints it as `Error: …` and exits with 2): empty or unordered band edges,
NaN and infinite numbers, negative amounts and shares out of range."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.errors import InputError
from optimization.space import default_space_text, load_space

EDGES = "edges = [50000.0, 100000.0, 200000.0]"
CONTRACT = "profit_cap_share = 0.05"


@pytest.mark.parametrize(("old", "new", "key"), [
    (EDGES, "edges = []", "bands.edges"),
    (EDGES, "edges = [100000.0, 50000.0]", "bands.edges"),
    (EDGES, "edges = [50000.0, 50000.0, 200000.0]", "bands.edges"),
    (EDGES, "edges = [50000.0, nan]", "bands.edges"),
    ("max = 80.0", "max = inf", "premium.max"),
    ('candidates = [280000.0, 300000.0, 400000.0, "none"]', "candidates = [inf]",
     "cap.candidates"),
    ("opex_fixed = 0.0", "opex_fixed = -100.0", "costs.opex_fixed"),
    ("opex_fixed = 0.0", "opex_fixed = nan", "costs.opex_fixed"),
    ("cvar_budget = 6000000.0", "cvar_budget = nan", "risk.cvar_budget"),
    (CONTRACT, f"{CONTRACT}\nretention_candidates = [-0.05]", "contract.retention_candidates"),
    (CONTRACT, f"{CONTRACT}\nfund_share_candidates = [1.5]", "contract.fund_share_candidates"),
    (CONTRACT, f"{CONTRACT}\ncorridor_width = -0.05", "contract.corridor_width"),
    ("cost_levels = [20000.0,", "cost_levels = [-20000.0,", "report.cost_levels"),
    ("step = 0.05 ", "step = 0.0000001 ", "bands.step"),
    ("step = 0.5 ", "step = 0.0000001 ", "premium"),
    ("step = 0.5 ", "step = 0 ", "premium.step"),
    ("step = 0.5 ", "step = 100.0 ", "premium"),
])
def test_a_bad_value_is_one_line_naming_the_file_and_key(tmp_path, old, new, key):
    text = default_space_text()
    assert old in text
    path = tmp_path / "space.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(InputError) as caught:
        load_space(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: {key}"), message


def test_the_default_space_still_loads():
    space = load_space()
    assert space.bands.edges == (50_000.0, 100_000.0, 200_000.0)


@settings(max_examples=60, deadline=None)
@given(lo=st.sampled_from([0.3, 0.5, 0.55]), width=st.sampled_from([0.0, 0.1, 0.2, 0.35]),
       step=st.sampled_from([0.05, 0.1, 0.025]), bands=st.integers(1, 3),
       increasing=st.booleans(), today=st.lists(st.sampled_from([0.5, 0.6, 0.62, 0.7, 0.4]),
                                                min_size=2, max_size=4))
def test_the_grid_is_counted_as_it_is_built(lo, width, step, bands, increasing, today):
    """The size that chooses between enumeration and branch and bound (and refuses a
    settled question) is the number of rows the grid would hold, counted without it."""
    from forecasting.scheme.plan import Plan
    from optimization.pricing import ratio_grid, ratio_grid_size

    space = load_space(None)
    space = space.model_copy(update={
        "bands": space.bands.model_copy(update={
            "edges": tuple(50_000.0 * (k + 1) for k in range(bands)), "ratio_min": lo,
            "ratio_max": lo + width, "step": step}),
        "constraints": space.constraints.model_copy(update={"ratios_increasing": increasing})})
    sq = Plan(60.0, 15_000.0, tuple(50_000.0 * (k + 1) for k in range(len(today) - 1)),
              tuple(today), 300_000.0)
    assert ratio_grid_size(space, sq) == len(ratio_grid(space, sq))
    assert ratio_grid_size(space) == len(ratio_grid(space))


@pytest.mark.parametrize("scale", [0.001, 1.0, 100.0])
def test_the_premium_step_is_a_count_of_steps_not_an_amount_of_money(tmp_path, scale):
    """Money comes in the data's units: a portfolio counted in thousands negotiates at
    0.0005 (half a CNY), one in fen at 50; only a step that makes the premium grid huge
    (more than MAX_PREMIUM_STEPS up to the max) is refused, at every scale."""
    text = default_space_text()
    for key, value in (("min", 55.0), ("max", 80.0), ("fixed", 60.0), ("step", 0.5)):
        old = f"{key} = {value}"
        assert old in text
        text = text.replace(old, f"{key} = {value * scale!r}", 1)
    path = tmp_path / "space.toml"
    path.write_text(text)
    prem = load_space(path).premium
    assert prem.step == pytest.approx(0.5 * scale)
    assert prem.grid() == pytest.approx((55.0 * scale, 80.0 * scale))
    path.write_text(text.replace(f"step = {0.5 * scale!r}", f"step = {1e-7 * scale!r}", 1))
    with pytest.raises(InputError, match="premium"):
        load_space(path)
