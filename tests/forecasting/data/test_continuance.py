"""Layer pricing from a continuance table against a published answer.

Source: Society of Actuaries, Exam STAM Sample Questions (2018), question 310 (reproduced
with the SOA's permission at stochiki.com, "exercise 23c6fea9bc"): grouped loss data

    size of loss   number of claims   ground-up total losses
    0 - 99               1,100                58,500
    100 - 249              400                70,000
    250 - 499              300               120,000
    500 - 999              200               150,000
    > 999                  100               200,000

"Calculate the percentage reduction in loss costs by moving from a 100 deductible to a 250
deductible." Key B, 27 %: the loss cost is 440,000 with a 100 deductible and 320,000 with a
250 deductible (120,000 / 440,000 = 0.273).
"""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.data.summary import ContinuanceTable

STAM_310 = ContinuanceTable(edges=np.array([0.0, 100.0, 250.0, 500.0, 1000.0]),
                            counts=np.array([1100, 400, 300, 200, 100]),
                            totals=np.array([58_500.0, 70_000.0, 120_000.0, 150_000.0,
                                             200_000.0]))


def test_stam_310_loss_costs_above_each_deductible():
    claims = STAM_310.counts.sum()
    above_100 = claims * STAM_310.layer(100.0, np.inf)
    above_250 = claims * STAM_310.layer(250.0, np.inf)
    assert above_100 == pytest.approx(440_000.0, rel=1e-12)
    assert above_250 == pytest.approx(320_000.0, rel=1e-12)
    reduction = 1 - above_250 / above_100
    assert round(100 * reduction) == 27  # the published key, B


def test_the_open_top_interval_is_not_guessed():
    with pytest.raises(ValueError, match="open top interval"):
        STAM_310.lev(5_000.0)
    assert STAM_310.lev(1_000.0) == pytest.approx(
        (58_500 + 70_000 + 120_000 + 150_000 + 1_000 * 100) / 2_100)
