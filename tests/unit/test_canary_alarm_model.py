"""The canary rollback model behind ``make bench-canary``, pinned on cases that can be checked by hand."""

from __future__ import annotations

import math
import re

import pytest
from bench.canary_alarm import (
    EXPRESS_RULE,
    REDCAP_RULE,
    RESULTS,
    breach_given,
    breach_probability,
    poisson,
    report,
    rollback,
    rollback_probability,
)

from redcap_ctl.express_canary import Rule


@pytest.mark.parametrize("mean", [0.5, 2.5, 12.5, 250.0])
def test_the_poisson_sums_leave_out_almost_nothing(mean: float) -> None:
    terms = list(poisson(mean))
    assert abs(sum(p for _, p in terms) - 1) < 1e-9
    assert abs(sum(n * p for n, p in terms) - mean) < 1e-6 * max(1.0, mean)
    assert len({n for n, _ in terms}) == len(terms)


def test_two_of_three() -> None:
    assert rollback_probability(0.0) == 0
    assert rollback_probability(1.0) == 1
    assert rollback_probability(0.5) == pytest.approx(0.5)
    assert rollback_probability(0.1) == pytest.approx(3 * 0.01 * 0.9 + 0.001)


def test_express_breaches_on_any_4xx_below_a_hundred_requests() -> None:
    # One 4xx in 99 requests is above 1 %; in 100 it is not.
    assert EXPRESS_RULE.breaches(99, 1, 0)
    assert not EXPRESS_RULE.breaches(100, 1, 0)
    # Every request a 4xx: a minute breaches iff it has a request at all.
    assert breach_probability(EXPRESS_RULE, 1.0, 1.0, 0.0) == pytest.approx(1 - math.exp(-1))


def test_redcap_rule_counts_server_errors_like_express_and_client_errors_only_in_volume() -> None:
    assert REDCAP_RULE.breaches(99, 0, 1)
    assert not REDCAP_RULE.breaches(4, 4, 0)  # all 4xx, but fewer than 5
    assert REDCAP_RULE.breaches(20, 5, 0)  # 5 of 20 = 25 % > 20 %
    assert not REDCAP_RULE.breaches(25, 5, 0)  # 5 of 25 = 20 %, not above
    assert breach_probability(REDCAP_RULE, 3.0, 0.0, 1.0) == pytest.approx(1 - math.exp(-3))
    assert breach_probability(REDCAP_RULE, 50.0, 0.0, 0.0) == 0


def test_breach_given_n_is_the_binomial_sum() -> None:
    # n = 2, p4 = 0.5, p5 = 0: Express breaches unless both requests are fine (P = 0.75).
    assert breach_given(EXPRESS_RULE, 2, 0.5, 0.0) == pytest.approx(0.75)
    # n = 10, p5 = 0.1, REDCap: breaches iff at least one 5xx (10 % of 10 > 1 %).
    assert breach_given(REDCAP_RULE, 10, 0.0, 0.1) == pytest.approx(1 - 0.9**10)
    # 4xx and 5xx drawn together: n = 1 with p4 = p5 = 0.5 is one 4xx or one 5xx, each half the time.
    assert breach_given(
        Rule(server_error_percent=1, client_error_percent=50, min_client_errors=1), 1, 0.5, 0.5
    ) == pytest.approx(1.0)


def test_shares_that_are_not_a_distribution_are_refused() -> None:
    with pytest.raises(ValueError, match="not a distribution"):
        breach_probability(REDCAP_RULE, 10.0, 0.7, 0.4)
    with pytest.raises(ValueError, match="not a distribution"):
        breach_probability(REDCAP_RULE, 10.0, -0.1, 0.0)


def test_more_normal_4xx_never_means_fewer_false_rollbacks() -> None:
    for rule in (EXPRESS_RULE, REDCAP_RULE):
        values = [rollback(rule, 200, p4, 0.0) for p4 in (0.01, 0.05, 0.1, 0.2)]
        assert values == sorted(values)


def test_the_results_page_is_generated_and_the_docs_quote_it() -> None:
    text = RESULTS.read_text(encoding="utf-8")
    assert text == report(), "tests/bench/canary-results.md is stale: run `make bench-canary`"
    docs = (RESULTS.parents[2] / "docs" / "compute.md").read_text(encoding="utf-8")
    summary = docs.split("From those tables:")[1].split("\n\n")[0]
    cells = {cell.strip() for line in text.splitlines() if line.startswith("|") for cell in line.split("|")}
    quoted = re.findall(r"(\d+(?:\.\d+)?) %", summary.replace("\n", " "))
    figures = [q for q in quoted if q not in ("2", "5", "20")]  # the inputs: normal shares, the default limit
    assert figures
    for figure in figures:
        assert f"{figure} %" in cells or f"<{figure} %" in cells, figure
