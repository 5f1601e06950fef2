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
    # prod: one NAT per AZ and a reader; dev: one NAT and no reader (from the template's conditions).
    dev, prod = (
        run.monthly(run.render("dev", "AppRunner"), run.IDLE),
        run.monthly(run.render("prod", "AppRunner"), run.IDLE),
    )
    nat_month = HOURS_PER_MONTH * (PRICES["nat_gateway_hour"] + PRICES["public_ipv4_hour"])
    nat_data = run.IDLE.nat_gb * PRICES["nat_gb_processed"]
    assert dev["NAT gateways (+ their IPv4)"] == pytest.approx(nat_month + nat_data)
    assert prod["NAT gateways (+ their IPv4)"] == pytest.approx(2 * nat_month + nat_data)
    assert prod["Aurora Serverless v2"] > dev["Aurora Serverless v2"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_express_pays_no_nat_but_the_endpoints_its_tasks_use(env: str) -> None:
    # Issue 17 item 8: the cost script charged NAT processing on Express, which has no NAT gateway.
    rendered = run.render(env, "EcsExpress")
    assert not rendered.of_type("AWS::EC2::NatGateway")
    for work in (run.IDLE, run.LOAD):
        lines = run.monthly(rendered, work)
        assert "NAT gateways (+ their IPv4)" not in lines
        # Secrets Manager, ECR API, ECR layers, CloudWatch Logs and SES SMTP, in two AZs each.
        hours = 5 * 2 * HOURS_PER_MONTH * PRICES["interface_endpoint_az_hour"]
        data = work.nat_gb * PRICES["interface_endpoint_gb_processed"]
        assert lines["VPC interface endpoints"] == pytest.approx(hours + data)
    app_runner = run.monthly(run.render(env, "AppRunner"), run.IDLE)
    assert app_runner["VPC interface endpoints"] == pytest.approx(
        2 * HOURS_PER_MONTH * PRICES["interface_endpoint_az_hour"]
    )
