"""The liveness config: the paper's policy, provider checks, schema; spoof-rate tables."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest
import yaml
from snakemake.utils import validate

from dfmnist import ACTIONS
from dfmnist.liveness import make_provider
from dfmnist.liveness.policy import (
    PAPER_POLICY,
    actions_for,
    api_calls,
    check_liveness_config,
    expand_policy,
    provider_options,
    providers_in,
)
from dfmnist.liveness.spoof_rates import plot_spoof_rates, spoof_rates

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "schemas" / "config.schema.yaml")


@pytest.fixture
def config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_paper_policy_expands_and_validates(config):
    config["liveness"]["policy"] = "paper"
    expand_policy(config)
    validate(copy.deepcopy(config), SCHEMA)
    policy = config["liveness"]["policy"]
    assert policy["blink"] == ["tianyan", "baidu"] and policy["smile"] == ["baidu"]
    assert sum(len(p) == 2 for p in policy.values()) == 4 and set(policy) == set(ACTIONS)
    assert providers_in(config) == ["baidu", "tianyan"]
    assert actions_for(config, "tianyan") == ["blink", "open_mouth", "yaw", "nod"]
    assert actions_for(config, "baidu") == list(ACTIONS)
    assert (api_calls("baidu"), api_calls("tianyan"), api_calls("local")) == (1, 1, 0)
    # tianyan needs its endpoint before anything runs
    with pytest.raises(ValueError, match="liveness.providers.tianyan.url: required"):
        check_liveness_config(config)
    config["liveness"]["providers"]["tianyan"]["url"] = "http://127.0.0.1:9/liveness"
    check_liveness_config(config)
    config["liveness"]["policy"]["smile"] = ["tianyan"]
    with pytest.raises(ValueError, match="tianyan cannot judge smile"):
        check_liveness_config(config)


def test_default_config_is_offline_and_builds_every_provider(config):
    validate(copy.deepcopy(config), SCHEMA)
    assert providers_in(config) == ["local"]
    check_liveness_config(config)
    for name in ("baidu", "tianyan"):
        provider = make_provider(name, **provider_options(config, name))
        assert provider.http.qps == 2 and provider.http.max_attempts == 5
        assert len(provider.config_version()) == 16
    assert PAPER_POLICY["nod"] == ["tianyan", "baidu"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("policy", {"blink": ["acme"]}, "'acme' is not one of"),
    ("providers", {"baidu": {"threshold": "frr_5"}}, "is not valid under any"),
    ("providers", {"baidu": {"http": {"qps": 0}}}, "0 is less than or equal to the minimum"),
    ("providers", {"tianyan": {"secret_env": "NOT A NAME"}}, "does not match"),
])
def test_schema_rejects_bad_liveness_settings(config, key, value, message):
    config["liveness"][key] = value
    with pytest.raises(Exception, match=message):
        validate(config, SCHEMA)


def test_spoof_rates_per_action_and_provider(tmp_path):
    policy = {"blink": ["tianyan", "baidu"], "smile": ["baidu"]}
    rows = [("c0", "blink", "baidu", True), ("c0", "blink", "tianyan", False),
            ("c1", "blink", "baidu", True), ("c1", "blink", "tianyan", True),
            ("c2", "smile", "baidu", True), ("c3", "smile", "baidu", False),
            ("c4", "smile", "baidu", True), ("c4", "smile", "local", False)]
    verdicts = pl.DataFrame(rows, schema=["candidate_id", "action", "provider", "passed"],
                            orient="row")
    rates = spoof_rates(verdicts, policy)
    got = {(r["action"], r["provider"]): (r["passed"], r["videos"])
           for r in rates.iter_rows(named=True)}
    assert got == {("blink", "baidu"): (2, 2), ("blink", "tianyan"): (1, 2),
                   ("blink", "policy"): (1, 2), ("smile", "baidu"): (2, 3),
                   ("smile", "policy"): (2, 3)}  # local is not in the policy: left out
    assert rates["action"].to_list()[0] == "blink"  # the paper's action order
    # unjudged verdicts (null passed) are counted apart, out of the spoof rate
    unjudged = pl.concat([verdicts, pl.DataFrame(
        [("c5", "smile", "baidu", None), ("c1", "blink", "baidu", None)],
        schema=verdicts.schema, orient="row")])
    unjudged = unjudged.filter(~((pl.col("candidate_id") == "c1") & pl.col("passed").is_not_null()
                                 & (pl.col("provider") == "baidu")))
    rows = {(r["action"], r["provider"]): (r["passed"], r["videos"], r["unjudged"])
            for r in spoof_rates(unjudged, policy).iter_rows(named=True)}
    assert rows[("smile", "baidu")] == (2, 3, 1) and rows[("blink", "baidu")] == (1, 1, 1)
    assert rows[("blink", "policy")] == (0, 1, 1)  # c1: tianyan passed, baidu unjudged
    png = plot_spoof_rates(rates, tmp_path / "rates.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
