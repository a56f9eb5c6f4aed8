"""The scikit-learn estimator contract, with the checks that apply to estimators whose X is
a frame of cell keys (the generic checks feed random numeric arrays, which do not apply)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from forecasting.data.cells import aggregate, annual_costs
from forecasting.models.frequency import GBMFrequency, PoissonFrequencyGLM
from forecasting.models.severity import GammaSeverityGLM, SplicedSeverityModel

ESTIMATORS = [PoissonFrequencyGLM(), GBMFrequency(max_iter=20), GammaSeverityGLM(),
              SplicedSeverityModel()]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", [check_no_attributes_set_in_init,
                                   check_parameters_default_constructible,
                                   check_get_params_invariance, check_set_params])
def test_sklearn_checks_that_apply(est, check):
    check(type(est).__name__, clone(est))


@pytest.fixture(scope="module")
def cells(small_city):
    return aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))


def _fit(est, cells):
    if isinstance(est, PoissonFrequencyGLM | GBMFrequency):
        t = cells.table
        return est.fit(t, t["claimants"] / t["exposure"], sample_weight=t["exposure"]), t
    c = cells.claimants
    return est.fit(c, c["cost"].to_numpy()), c


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_fit_predict_clone_refit(est, cells):
    with pytest.raises(NotFittedError):
        clone(est).predict(cells.table)
    fitted, X = _fit(clone(est), cells)
    again, _ = _fit(clone(fitted), cells)  # clone keeps params, drops fitted state
    np.testing.assert_allclose(fitted.predict(X), again.predict(X), rtol=1e-6)
    assert all(k.endswith("_") for k in vars(fitted) if k not in est.get_params())
