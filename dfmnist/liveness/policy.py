"""The liveness section of the config: the per-action policy and providers built from it."""

from __future__ import annotations

from typing import Any

from dfmnist import ACTIONS

#: DeepFake MNIST+: TianyanData and Baidu for its four actions, Baidu alone for the rest.
PAPER_POLICY: dict[str, list[str]] = {
    action: (["tianyan", "baidu"] if action in ("blink", "open_mouth", "yaw", "nod")
             else ["baidu"])
    for action in ACTIONS
}

#: Providers that call a paid web API (their jobs take the `api_calls` resource).
REMOTE = ("baidu", "tianyan")


def expand_policy(config: dict) -> None:
    """Replace ``liveness.policy: paper`` by the paper's per-action policy, in place."""
    liveness = config.get("liveness") or {}
    if liveness.get("policy") == "paper":
        liveness["policy"] = {a: list(p) for a, p in PAPER_POLICY.items()}


def providers_in(config: dict) -> list[str]:
    """Providers the policy names for the configured actions."""
    policy = config["liveness"]["policy"]
    return sorted({p for a in config["actions"] for p in policy[a]})


def actions_for(config: dict, provider: str) -> list[str]:
    """Configured actions whose policy names `provider` (the only ones it is asked about)."""
    policy = config["liveness"]["policy"]
    return [a for a in config["actions"] if provider in policy[a]]


def provider_options(config: dict, provider: str) -> dict[str, Any]:
    """Constructor options for `provider` from ``liveness.providers.<provider>``; a web API's
    `http.jobs` is ``liveness.api_jobs`` (jobs sharing the account's qps)."""
    options = dict((config["liveness"].get("providers") or {}).get(provider) or {})
    if provider in REMOTE:
        options["http"] = {**(options.get("http") or {}),
                           "jobs": int(config["liveness"]["api_jobs"])}
    return options


def check_api_jobs(config: dict, api_calls: int | None) -> None:
    """ValueError when Snakemake may run more web API liveness jobs at once (its `api_calls`
    resource; None: unlimited) than ``liveness.api_jobs`` divides each account's qps by."""
    if not any(p in REMOTE for p in providers_in(config)):
        return
    jobs = int(config["liveness"]["api_jobs"])
    if api_calls is None or api_calls > jobs:
        allowed = "any number of" if api_calls is None else str(api_calls)
        raise ValueError(
            f"config error at liveness.api_jobs: the api_calls resource lets {allowed} "
            f"liveness jobs call a web API at once, but each sends at qps / {jobs}; set "
            f"--resources api_calls={jobs} (profiles/default sets 1) or liveness.api_jobs")


#: Provider options that change how a verdict is fetched, never the verdict itself.
TRANSPORT_OPTIONS = frozenset({"token_url", "verify_url", "url", "api_key_env",
                               "secret_key_env", "appid_env", "secret_env", "http",
                               "token_margin"})


def verdict_options(config: dict, provider: str) -> dict[str, Any]:
    """`provider_options` without the transport settings: what a job's params track, so that
    moving an endpoint or changing the QPS does not rerun the stage."""
    return {k: v for k, v in provider_options(config, provider).items()
            if k not in TRANSPORT_OPTIONS}


def api_calls(provider: str) -> int:
    """The `api_calls` resource a job of `provider` takes: 1 for a web API, else 0."""
    return 1 if provider in REMOTE else 0


def check_liveness_config(config: dict) -> None:
    """Cross-key checks: TianyanData needs its endpoint and must know every action the policy
    sends it. Raises ValueError naming the key."""
    for provider in providers_in(config):
        options = provider_options(config, provider)
        if provider == "tianyan":
            if not options.get("url"):
                raise ValueError("config error at liveness.providers.tianyan.url: required "
                                 "when the policy names tianyan")
            from dfmnist.liveness.tianyan import DEFAULT_ACTIONS

            known = options.get("actions") or DEFAULT_ACTIONS
            unknown = [a for a in actions_for(config, provider) if a not in known]
            if unknown:
                raise ValueError("config error at liveness.policy: tianyan cannot judge "
                                 f"{', '.join(unknown)} (it knows {', '.join(known)})")
