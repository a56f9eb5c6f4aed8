"""What training hands its MLflow helper, and when: a candidate's plots as soon as it is
fitted on every year (the helper draws them during the backtest), its record once
backtested."""

from __future__ import annotations

import pytest

from forecasting.data.dataset import load_data
from pipelines.workflows import train as train_module
from pipelines.workflows.train import Sends, _figures, _fit_candidates, candidates


@pytest.fixture(scope="module")
def small_ds(small_dir):
    return load_data(small_dir)


def test_plots_go_before_the_backtest_and_the_record_after(small_ds, monkeypatch):
    events = []
    real_backtest = train_module.backtest

    def backtest(*args, **kwargs):
        events.append(("backtest",))
        return real_backtest(*args, **kwargs)

    monkeypatch.setattr(train_module, "backtest", backtest)
    todo = [c for c in candidates(small_ds) if c.name in ("poisson-bands", "spliced-q0.95")]
    fitted_models = {}

    def fitted(cand, model):
        fitted_models[cand.name] = model
        # the plots need nothing but the model fitted on every year: made now
        events.append(("fitted", cand.name, len(list(_figures(cand.kind, model, small_ds)))))

    done = _fit_candidates(small_ds, todo, {}, None, None, Sends(
        fitted, lambda f: events.append(("backtested", f.candidate.name))))
    assert events == [("fitted", "poisson-bands", 2), ("backtest",),
                      ("backtested", "poisson-bands"),
                      ("fitted", "spliced-q0.95", 3), ("backtest",),
                      ("backtested", "spliced-q0.95")]
    # the model the plots were drawn from is the candidate's final fit (on every year)
    for f in done:
        assert f.model is fitted_models[f.candidate.name]
        assert len(f.backtest) == len(small_ds.cells.years) - 1
