"""AWS list prices, us-east-1, USD, as read on the date below (on-demand, no free tier, no savings plans).

Update PRICES_DATE with every change; `make cost` prints it under the table.
"""

from __future__ import annotations

PRICES_DATE = "2026-12-03"
REGION = "us-east-1"
HOURS_PER_MONTH = 730

PRICES: dict[str, float] = {
    # App Runner: active instances pay vCPU and memory; idle provisioned instances memory only.
    "apprunner_vcpu_hour": 0.064,
    "apprunner_gb_hour": 0.007,
    "apprunner_idle_gb_hour": 0.007,
    # Fargate (Linux/x86): ECS Express itself has no charge.
    "fargate_vcpu_hour": 0.04048,
    "fargate_gb_hour": 0.004445,
    # Application Load Balancer that Express provisions (shared by up to 25 Express services).
    "alb_hour": 0.0225,
    "alb_lcu_hour": 0.008,
    # Every public IPv4 address (Express tasks in public subnets, the ALB per AZ, NAT EIPs).
    "public_ipv4_hour": 0.005,
    "nat_gateway_hour": 0.045,
    "nat_gb_processed": 0.045,
    # AWS PrivateLink interface endpoints: per endpoint per AZ, and per GB processed (first PB of a
    # Region; the per-GB rate added 2026-12-03 from https://aws.amazon.com/privatelink/pricing/).
    "interface_endpoint_az_hour": 0.01,
    "interface_endpoint_gb_processed": 0.01,
    # Aurora MySQL Serverless v2 (Aurora Standard).
    "aurora_acu_hour": 0.12,
    "aurora_storage_gb_month": 0.10,
    "secret_month": 0.40,
    "kms_key_month": 1.00,
    "waf_web_acl_month": 5.00,
    "waf_rule_month": 1.00,
    "waf_million_requests": 0.60,
    "cloudwatch_dashboard_month": 3.00,
    "cloudwatch_alarm_metric_month": 0.10,
    # Container Insights (ECS): billed as custom metrics; about 10 per service and cluster.
    "cloudwatch_custom_metric_month": 0.30,
    "lambda_gb_second_arm": 0.0000133334,
    "lambda_million_requests": 0.20,
    # GuardDuty (https://aws.amazon.com/guardduty/pricing/, us-east-1 figures of the page's worked
    # examples as transcribed 2026-10-07 in api-evangelist/amazon-guardduty plans/amazon-guardduty-plans-pricing.yml;
    # first tiers only). Foundational: CloudTrail management events and VPC Flow Logs + DNS logs.
    "guardduty_million_management_events": 4.00,
    "guardduty_flow_dns_gb": 1.00,
    "guardduty_million_s3_data_events": 0.80,
    # RDS Protection for Aurora Serverless v2: 0.25 USD per ACU (read as a month of the average ACU).
    "guardduty_rds_acu_month": 0.25,
    "guardduty_lambda_network_gb": 1.00,
    # Malware Protection for S3: per GB scanned and per 1,000 objects evaluated (free tier not counted).
    "malware_s3_gb_scanned": 0.09,
    "malware_s3_thousand_objects": 0.215,
}
