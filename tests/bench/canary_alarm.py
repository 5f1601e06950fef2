"""``make bench-canary``: how often an ECS Express canary rolls back, under Express's rule and REDCap's.

Computed exactly, not simulated. The model, per one-minute datapoint of the canary alarm:

- the site receives R requests a minute and the canary (the new revision) about 5 % of them, so
  its requests n in a minute are Poisson with mean 0.05 R;
- each request is a 4xx with probability p4 and a 5xx with probability p5, independently, so
  (4xx, 5xx, other) is multinomial given n;
- a datapoint breaches by the rule (``Rule.breaches``); the deployment rolls back when at least 2
  of the 3 datapoints of the bake breach, minutes being independent.

Express's documented rule: 4xx + 5xx above 1 % of the canary's requests. REDCap's rule (what
``redcap_ctl.express_canary`` writes, defaults of the template): 5xx above 1 %, or at least 5 4xx
above 20 %. Tables: false rollbacks of a healthy canary at normal 4xx shares, detection of broken
canaries, and the sensitivity of REDCap's rule to its two client-error settings.

Usage: PYTHONPATH=layers/shared:tests python -m bench.canary_alarm [--write]
(--write: also to tests/bench/canary-results.md).
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from redcap_ctl.express_canary import EXPRESS_DEFAULT, Rule

RESULTS = Path(__file__).with_name("canary-results.md")
CANARY_SHARE = 0.05
# Probability mass left out of every sum: far below anything the tables print.
TAIL = 1e-13
SITE_RATES = (10, 50, 200, 1000, 5000)  # requests a minute to the whole site
BASELINE_4XX = (0.005, 0.01, 0.02, 0.05, 0.10)
SENSITIVITY_RATES = (50, 200, 5000)


# The rules as the stack writes them into the alarm (one statement of each: redcap_ctl.express_canary).
EXPRESS_RULE = EXPRESS_DEFAULT
REDCAP_RULE = Rule(server_error_percent=1, client_error_percent=20, min_client_errors=5)


def short_form(rule: Rule) -> str:
    """The short form the tables print."""
    if rule.combined:
        return f"4xx+5xx > {rule.server_error_percent:g} %"
    return (
        f"5xx > {rule.server_error_percent:g} %, or at least {rule.min_client_errors} 4xx "
        f"> {rule.client_error_percent:g} %"
    )


def poisson(mean: float) -> Iterator[tuple[int, float]]:
    """(n, P(n)) for a Poisson mean, until the mass left is below TAIL."""
    if mean <= 0:
        yield 0, 1.0
        return
    # Start at the mode in log space (no underflow for large means) and walk both ways.
    mode = int(mean)
    log_mode = mode * math.log(mean) - mean - math.lgamma(mode + 1)
    pmf_mode = math.exp(log_mode)
    yield mode, pmf_mode
    total = pmf_mode
    p, n = pmf_mode, mode
    while n > 0:
        p = p * n / mean
        n -= 1
        total += p
        yield n, p
        if p < TAIL * 1e-3:
            break
    p, n = pmf_mode, mode
    while total < 1 - TAIL or n < mean + 10:
        n += 1
        p = p * mean / n
        total += p
        yield n, p
        if p < TAIL * 1e-3 and n > mean:
            break


@functools.cache
def _binomial_pmf(trials: int, prob: float) -> tuple[float, ...]:
    """Every P(k) of Binomial(trials, prob), 0 < prob < 1; cached because each (n, 4xx count) reuses them."""
    log_p, log_q = math.log(prob), math.log1p(-prob)
    log_all = math.lgamma(trials + 1)
    # Log space: at a few hundred trials the plain product underflows in the tails.
    return tuple(
        math.exp(log_all - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p + (trials - k) * log_q)
        for k in range(trials + 1)
    )


@functools.cache
def _upper_tails(trials: int, prob: float) -> tuple[float, ...]:
    """P(X >= k) of Binomial(trials, prob) for k = 0 .. trials + 1."""
    if prob <= 0:
        return (1.0,) + (0.0,) * (trials + 1)
    if prob >= 1:
        return (1.0,) * (trials + 1) + (0.0,)
    # Summed from the top so a tiny upper tail is not the difference of two numbers near 1.
    tails = [0.0] * (trials + 2)
    for k, p in zip(range(trials, -1, -1), reversed(_binomial_pmf(trials, prob)), strict=True):
        tails[k] = tails[k + 1] + p
    return tuple(tails)


def binomial(trials: int, prob: float) -> list[tuple[int, float]]:
    """(k, P(k)) of Binomial(trials, prob) where P(k) is not negligible."""
    if prob <= 0:
        return [(0, 1.0)]
    if prob >= 1:
        return [(trials, 1.0)]
    floor = TAIL * math.exp(-10)
    return [(k, p) for k, p in enumerate(_binomial_pmf(trials, prob)) if p > floor]


def _fewest_breaching_server_errors(rule: Rule, n: int, client: int) -> int:
    """The smallest 5xx count with which (n, client, 5xx) breaches; n - client + 1 if none does."""
    # Both rule forms only breach more with more 5xx, so the breaching counts are an upper range and
    # one binomial tail prices them. The threshold is about server_error_percent % of n: a short walk.
    server = 0
    while server <= n - client and not rule.breaches(n, client, server):
        server += 1
    return server


def breach_given(rule: Rule, n: int, p4: float, p5: float) -> float:
    """P(a datapoint breaches | the canary served n requests in it)."""
    if n == 0:
        return 1.0 if rule.breaches(0, 0, 0) else 0.0
    # Given the 4xx count, each other request is a 5xx with probability p5 / (1 - p4).
    p_server = min(1.0, p5 / (1 - p4)) if p4 < 1 else 0.0
    total = 0.0
    for client, p_client in binomial(n, p4):
        rest = n - client
        total += p_client * _upper_tails(rest, p_server)[_fewest_breaching_server_errors(rule, n, client)]
    return total


def breach_probability(rule: Rule, mean_requests: float, p4: float, p5: float) -> float:
    """P(one minute of the canary breaches) with Poisson(mean_requests) requests in it."""
    if not (0 <= p4 <= 1 and 0 <= p5 <= 1 and p4 + p5 <= 1 + 1e-12):
        raise ValueError(f"not a distribution of responses: p4={p4}, p5={p5}")
    return sum(p * breach_given(rule, n, p4, p5) for n, p in poisson(mean_requests))


def rollback_probability(q: float) -> float:
    """At least 2 of 3 independent datapoints breach."""
    return 3 * q * q * (1 - q) + q**3


def rollback(rule: Rule, site_rate: float, p4: float, p5: float) -> float:
    return rollback_probability(breach_probability(rule, CANARY_SHARE * site_rate, p4, p5))


def fmt(probability: float) -> str:
    percent = 100 * probability
    if percent < 0.001:
        return "<0.001 %"
    # Three significant figures, so "100 %" means at least 99.95 %, not certainty.
    return f"{percent:.3g} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def report() -> str:
    rates = [f"{r}/min (canary {CANARY_SHARE * r:g})" for r in SITE_RATES]
    out = [
        "# ECS Express canary rollbacks: Express's rule and REDCap's",
        "",
        "Computed by `make bench-canary` (`tests/bench/canary_alarm.py`), not measured on traffic: the",
        "canary gets 5 % of the site's requests (Poisson per minute), each request is a 4xx or 5xx",
        "independently, and a deployment rolls back when 2 of 3 one-minute datapoints breach.",
        f"Express's rule: {short_form(EXPRESS_RULE)}. REDCap's (the template's defaults): {short_form(REDCAP_RULE)}.",
        "",
        "## Healthy release: how often it rolls back anyway (no 5xx; the site's normal 4xx share)",
        "",
    ]
    rows = []
    for p4 in BASELINE_4XX:
        for rule in (EXPRESS_RULE, REDCAP_RULE):
            name = "Express" if rule is EXPRESS_RULE else "REDCap"
            rows.append([f"{100 * p4:g} %", name] + [fmt(rollback(rule, r, p4, 0.0)) for r in SITE_RATES])
    out += _table(["normal 4xx", "rule", *rates], rows)
    out += ["", "## Broken release: how often the rollback catches it", ""]
    broken = [
        ("every request 503 (configuration or database broken)", 0.0, 1.0),
        ("half the requests 404 (routing broken), no 5xx", 0.5, 0.0),
        ("5 % of requests 500, normal 2 % 4xx", 0.02, 0.05),
    ]
    rows = []
    for label, p4, p5 in broken:
        for rule in (EXPRESS_RULE, REDCAP_RULE):
            name = "Express" if rule is EXPRESS_RULE else "REDCap"
            rows.append([label, name] + [fmt(rollback(rule, r, p4, p5)) for r in SITE_RATES])
    out += _table(["canary", "rule", *rates], rows)
    out += [
        "",
        "## REDCap's rule: the client-error settings (4xx share limit %, minimum 4xx a minute)",
        "",
        "False rollback of a healthy release at a 10 % normal 4xx share, and detection of a release",
        "that answers 404 to half the requests, at 50, 200 and 5000 requests a minute.",
        "",
    ]
    rows = []
    for client_pct in (10, 15, 20, 30):
        for min_client in (3, 5, 10):
            rule = Rule(server_error_percent=1, client_error_percent=client_pct, min_client_errors=min_client)
            false = [fmt(rollback(rule, r, 0.10, 0.0)) for r in SENSITIVITY_RATES]
            caught = [fmt(rollback(rule, r, 0.5, 0.0)) for r in SENSITIVITY_RATES]
            rows.append([f"{client_pct} %", str(min_client), *false, *caught])
    header = [f"false, {r}/min" for r in SENSITIVITY_RATES] + [f"caught 404s, {r}/min" for r in SENSITIVITY_RATES]
    out += _table(["4xx limit", "min 4xx", *header], rows)
    out += [
        "",
        "Reading: at the canary's low volume a single 4xx is above 1 %, so Express's rule rolls healthy",
        "releases back whenever the site's normal 4xx share is not tiny, and at high volume it always",
        "does once that share passes 1 %. REDCap's rule keeps 5xx at Express's 1 % and counts 4xx only",
        "at a volume and share normal traffic does not reach. What no rule can do: judge a canary that",
        "gets almost no requests (a site at 10 requests a minute sends its canary one every two minutes).",
        "",
        "Why 20 % and 5: 10 % and 15 % roll healthy releases back at high volume when the normal share is",
        "10 % (47.7 % and 0.012 % at 5000/min); a minimum of 3 rolls them back at 200/min (1.3 %); a minimum",
        "of 10 no longer catches the broken routing at 200/min. Measure your own normal share with",
        "`python -m bench.canary_baseline` and raise the limit if it comes near 10 %.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.canary_alarm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS.name}")
    args = parser.parse_args(argv)
    text = report()
    print(text)
    if args.write:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
