"""What a train run is reused by: the [development] settings count for data read as of a
date (they complete the cells the models fit) and not otherwise; an encoding other than
UTF-8 is part of the data fingerprint (the same bytes say other things)."""

from __future__ import annotations

import datetime

from forecasting.config import Development, ProjectConfig
from forecasting.data.cohorts import CohortSpec
from forecasting.data.options import DataOptions
from pipelines.tracking import config_hash
from pipelines.workflows.candidates import data_checks, development_of, train_config_of


def _hash(options: DataOptions, config: ProjectConfig) -> str:
    spec = CohortSpec()
    return config_hash(train_config_of(spec, 0.0, "above", config.models,
                                       development_of(options, config)))


def test_development_settings_decide_reuse_only_for_as_of_data():
    bf = ProjectConfig(development=Development(method="bornhuetter-ferguson"))
    plain, as_of = DataOptions(), DataOptions(as_of=datetime.date(2022, 1, 31))
    assert _hash(plain, ProjectConfig()) == _hash(plain, bf)
    assert _hash(as_of, ProjectConfig()) != _hash(as_of, bf)
    tail = ProjectConfig(development=Development(tail=1.05))
    assert _hash(as_of, ProjectConfig()) != _hash(as_of, tail)


def test_an_encoding_other_than_utf8_changes_the_fingerprint_text():
    spec = CohortSpec()
    utf8 = DataOptions().fingerprint_text(spec)
    assert DataOptions(encoding="utf-8").fingerprint_text(spec) == utf8
    assert DataOptions(encoding="gbk").fingerprint_text(spec) != utf8
    assert "encoding" not in utf8  # UTF-8 data keep the fingerprints they had
    for same in ("UTF-8", "utf8", "U8"):  # one codec, spelt another way
        assert DataOptions(encoding=same).fingerprint_text(spec) == utf8
    assert (DataOptions(encoding="GBK").fingerprint_text(spec)
            == DataOptions(encoding="gbk").fingerprint_text(spec))


def test_development_settings_are_data_checks_only_for_as_of_data():
    """Without an as-of date the [development] settings are not applied: a train run
    vouches for data read with others (a re-run need not read them again, ever after);
    for as-of data they complete the cells, so other settings are other checks."""
    bf = ProjectConfig(development=Development(method="bornhuetter-ferguson"))
    plain, as_of = DataOptions(), DataOptions(as_of=datetime.date(2022, 1, 31))
    assert data_checks(plain, ProjectConfig()) == data_checks(plain, bf)
    assert data_checks(as_of, ProjectConfig()) != data_checks(as_of, bf)
    assert data_checks(plain, ProjectConfig()) != data_checks(as_of, ProjectConfig())
    assert data_checks(DataOptions(max_cost=1e8), bf) != data_checks(plain, bf)
    assert data_checks(DataOptions(encoding="gbk"), bf) != data_checks(plain, bf)
