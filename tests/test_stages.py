"""damvad.stages: the configs of extract, calibrate and detect are their stages' whole API: defaults from
damvad.choices, values checked when made, options that belong to another engine refused."""

from __future__ import annotations

import pytest

from damvad import choices
from damvad.config import ConfigError
from damvad.stages import CalibrateConfig, DetectConfig, ExtractConfig, LiveConfig


def test_defaults_are_the_one_definition_in_choices():
    assert CalibrateConfig().far == choices.FAR and LiveConfig().close_after == choices.CLOSE_AFTER
    assert ExtractConfig().connect_timeout == choices.CONNECT_TIMEOUT_S
    assert ExtractConfig().crops == choices.CROPS[0] and ExtractConfig().dtype == choices.DTYPES[0]
    assert ExtractConfig.limits["precision"] == LiveConfig.limits["precision"] == choices.PRECISIONS
    assert DetectConfig.limits["format"] == choices.ROW_FORMATS


def test_values_are_checked_when_a_config_is_made():
    assert ExtractConfig(precision="fp16").precision == "fp16"  # refused later, on a CPU, by the device
    with pytest.raises(ConfigError, match="crops: must be one of 'center', '5', '10', got '7'"):
        ExtractConfig(crops="7")
    with pytest.raises(ConfigError, match=r"far: must be in \(0, 1\), got 1.5"):
        CalibrateConfig(far=1.5)
    with pytest.raises(ConfigError, match=r"stride: must be in \[1, 64\], got 65"):
        LiveConfig(stride=65)
    with pytest.raises(ConfigError, match="format: must be one of 'csv', 'jsonl'"):
        DetectConfig(format="xml")


def test_options_of_the_other_engine_are_refused():
    with pytest.raises(ValueError, match="are for --engine ray"):
        ExtractConfig(address="auto")
    with pytest.raises(ValueError, match="are for --engine local"):
        ExtractConfig(engine="ray", batch_size=8)
    assert ExtractConfig(engine="ray", address="auto", cpus_per_worker=2).address == "auto"
