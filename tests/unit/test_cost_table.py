"""The README's cost table is the script's output, and the script counts what the template creates."""

from __future__ import annotations

import pytest
from cost import run
from cost.prices import HOURS_PER_MONTH, PRICES

from testkit import ROOT


def test_readme_table_is_generated_not_typed() -> None:
    text = (ROOT / "README.md").read_text()
    start, end = text.index(run.START), text.index(run.END) + len(run.END)
    assert text[start:end] == run.table(), "README.md's cost table is stale: run `make cost`"
    lines = (ROOT / "docs" / "cost.md").read_text()
    start, end = lines.index(run.LINES_START), lines.index(run.LINES_END) + len(run.LINES_END)
    assert lines[start:end] == run.lines_table(), "docs/cost.md's line items are stale: run `make cost`"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_express_idle_compute_is_min_tasks_all_month_at_fargate_prices(env: str) -> None:
    rendered = run.render(env, "EcsExpress")
    tasks = int(rendered.params["MinSize"])
    cpu, mem = (float(str(rendered.params[k]).split()[0]) for k in ("Cpu", "Memory"))
    lines = run.monthly(rendered, run.IDLE)
    expected = tasks * HOURS_PER_MONTH * (cpu * PRICES["fargate_vcpu_hour"] + mem * PRICES["fargate_gb_hour"])
    assert lines["compute (Fargate tasks)"] == pytest.approx(expected)
    assert "compute (App Runner)" not in lines
    assert lines["load balancer"] == pytest.approx(HOURS_PER_MONTH * PRICES["alb_hour"])


def test_app_runner_idle_pays_memory_only_and_load_pays_active_time() -> None:
    rendered = run.render("prod", "AppRunner")
    tasks = int(rendered.params["MinSize"])
    idle = run.monthly(rendered, run.IDLE)["compute (App Runner)"]
    load = run.monthly(rendered, run.LOAD)["compute (App Runner)"]
    assert idle == pytest.approx(tasks * HOURS_PER_MONTH * 4 * PRICES["apprunner_idle_gb_hour"])
    assert load > idle
    assert "load balancer" not in run.monthly(rendered, run.IDLE)


def test_counts_follow_the_environment() -> None:
    # prod: one NAT per AZ and a reader; dev: no NAT unless DevNatGateway=true, no reader (template conditions).
    dev, dev_nat, prod = (
        run.monthly(run.render("dev", "AppRunner"), run.IDLE),
        run.monthly(run.render("dev", "AppRunner", {"DevNatGateway": "true"}), run.IDLE),
        run.monthly(run.render("prod", "AppRunner"), run.IDLE),
    )
    nat_month = HOURS_PER_MONTH * (PRICES["nat_gateway_hour"] + PRICES["public_ipv4_hour"])
    nat_data = run.IDLE.nat_gb * PRICES["nat_gb_processed"]
    assert "NAT gateways (+ their IPv4)" not in dev
    assert dev_nat["NAT gateways (+ their IPv4)"] == pytest.approx(nat_month + nat_data)
    assert prod["NAT gateways (+ their IPv4)"] == pytest.approx(2 * nat_month + nat_data)
    assert prod["Aurora Serverless v2"] > dev["Aurora Serverless v2"]


def _total(env: str, compute: str, work: run.Workload = run.IDLE) -> float:
    return sum(run.monthly(run.render(env, compute), work).values())


def test_idle_dev_on_app_runner_is_at_most_90_usd() -> None:
    """Issue 19 item 3: an idle dev stack on App Runner costs at most 90 USD a month (it was 142)."""
    assert _total("dev", "AppRunner") <= 90
    assert sum(run.before("dev", "AppRunner", run.IDLE).values()) > 140


@pytest.mark.parametrize("compute", run.COMPUTE)
def test_prod_costs_the_same_before_and_after(compute: str) -> None:
    for work in (run.IDLE, run.LOAD):
        assert run.before("prod", compute, work) == run.monthly(run.render("prod", compute), work)


def test_dev_without_nat_pays_for_one_az_of_secrets_manager_and_ses_smtp() -> None:
    lines = run.monthly(run.render("dev", "AppRunner"), run.IDLE)
    hours = 2 * HOURS_PER_MONTH * PRICES["interface_endpoint_az_hour"]
    # Without NAT, REDCap's AWS traffic goes through the endpoints and pays their per-GB rate.
    assert lines["VPC interface endpoints"] == pytest.approx(
        hours + run.IDLE.nat_gb * PRICES["interface_endpoint_gb_processed"]
    )


@pytest.mark.parametrize(
    ("minutes", "awake"),
    [("1", 1.0), ("5", 1.0), ("10", 316 / 600), ("15", 316 / 900), ("60", 316 / 3600), ("0", 0.0)],
)
def test_auto_pause_only_pays_while_cron_keeps_aurora_awake(minutes: str, awake: float) -> None:
    rendered = run.render("dev", "AppRunner", {"CronMinutes": minutes, "DbMinCapacity": "0"})
    assert run.awake_fraction(rendered) == pytest.approx(awake)
    storage = run.IDLE.storage_gb * PRICES["aurora_storage_gb_month"]
    expected = HOURS_PER_MONTH * 0.5 * awake * PRICES["aurora_acu_hour"] + storage
    assert run.monthly(rendered, run.IDLE)["Aurora Serverless v2"] == pytest.approx(expected)
    # At 0.5 ACU minimum the cron interval changes nothing: the database never pauses.
    flat = run.render("dev", "AppRunner", {"CronMinutes": minutes, "DbMinCapacity": "0.5"})
    assert run.monthly(flat, run.IDLE)["Aurora Serverless v2"] == pytest.approx(
        HOURS_PER_MONTH * 0.5 * PRICES["aurora_acu_hour"] + storage
    )


def test_guardduty_and_malware_lines_follow_their_parameters() -> None:
    on = run.monthly(run.render("prod", "AppRunner"), run.LOAD)
    malware = (
        run.LOAD.uploads_gb * PRICES["malware_s3_gb_scanned"]
        + run.LOAD.uploads_thousand * PRICES["malware_s3_thousand_objects"]
    )
    assert on["Malware scans of uploads (estimate)"] == pytest.approx(malware)
    assert (
        on["GuardDuty (estimate)"] > run.LOAD.management_events_million * PRICES["guardduty_million_management_events"]
    )
    off = run.monthly(
        run.render("prod", "AppRunner", {"EnableGuardDuty": "false", "EnableMalwareProtection": "false"}), run.LOAD
    )
    assert "GuardDuty (estimate)" not in off
    assert "Malware scans of uploads (estimate)" not in off


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_express_pays_no_nat_but_the_endpoints_its_tasks_use(env: str) -> None:
    # Issue 17 item 8: the cost script charged NAT processing on Express, which has no NAT gateway.
    rendered = run.render(env, "EcsExpress")
    assert not rendered.of_type("AWS::EC2::NatGateway")
    for work in (run.IDLE, run.LOAD):
        lines = run.monthly(rendered, work)
        assert "NAT gateways (+ their IPv4)" not in lines
        # Secrets Manager, ECR API, ECR layers, CloudWatch Logs and SES SMTP: two AZs each in prod, one in dev.
        hours = 5 * (2 if env == "prod" else 1) * HOURS_PER_MONTH * PRICES["interface_endpoint_az_hour"]
        data = work.nat_gb * PRICES["interface_endpoint_gb_processed"]
        assert lines["VPC interface endpoints"] == pytest.approx(hours + data)
    app_runner = run.monthly(run.render(env, "AppRunner", {"DevNatGateway": "true"}), run.IDLE)
    assert app_runner["VPC interface endpoints"] == pytest.approx(
        (2 if env == "prod" else 1) * HOURS_PER_MONTH * PRICES["interface_endpoint_az_hour"]
    )
