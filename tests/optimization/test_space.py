"""A plan space with a bad value is refused on reading with one line naming the file and
the key (the CLI prints it as `Error: …` and exits with 2): empty or unordered band edges,
NaN and infinite numbers, negative amounts and shares out of range."""

from __future__ import annotations

import pytest

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
