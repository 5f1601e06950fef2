"""E9101 (tests/testkit/cfnlint_rules/resource_policies.py): each service's resource-policy grammar.

The first test is issue 17's finding: the ECR repository policy statement the template shipped, with
``Resource: "*"``, which ECR refuses at deploy time and every other check passed.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit import ROOT
from testkit.cfnlint_rules import resource_policies as grammar
from testkit.template import load

RULES_DIR = ROOT / "tests" / "testkit" / "cfnlint_rules"

# The Deny statement of RedcapImageRepository before issue 17 (Resource "*" included).
OLD_ECR_STATEMENT: dict[str, Any] = {
    "Sid": "OnlyTheStackPullsAndPushes",
    "Effect": "Deny",
    "Principal": "*",
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:PutImage"],
    "Resource": "*",
    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/build"]}},
}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _without(statement: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in statement.items() if k != key}


def test_the_old_ecr_repository_statement_fails() -> None:
    found = grammar.findings("AWS::ECR::Repository", _policy(OLD_ECR_STATEMENT))
    assert found == [
        "statement 0 has Resource: AWS::ECR::Repository policies take none (the service refuses the policy)"
    ]
    assert grammar.findings("AWS::ECR::Repository", _policy(_without(OLD_ECR_STATEMENT, "Resource"))) == []


def test_ecr_repository_policy_refuses_not_resource_and_resource_inside_an_if_branch() -> None:
    not_resource = {**_without(OLD_ECR_STATEMENT, "Resource"), "NotResource": "*"}
    assert grammar.findings("AWS::ECR::Repository", _policy(not_resource))
    clean = _without(OLD_ECR_STATEMENT, "Resource")
    # Only one branch of a condition carries the Resource: still refused (CloudFormation may send it).
    assert grammar.findings("AWS::ECR::Repository", {"Fn::If": ["Cond", _policy(clean), _policy(OLD_ECR_STATEMENT)]})
    assert grammar.findings(
        "AWS::ECR::Repository",
        _policy({"Fn::If": ["Cond", clean, OLD_ECR_STATEMENT]}),
    )
    # A policy written as JSON text is read too.
    assert grammar.findings("AWS::ECR::Repository", json.dumps(_policy(OLD_ECR_STATEMENT)))
    assert grammar.findings("AWS::ECR::Repository", {"Fn::Sub": json.dumps(_policy(OLD_ECR_STATEMENT))})


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::ECR::RegistryPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SNS::TopicInlinePolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SQS::QueueInlinePolicy",
        "AWS::SecretsManager::ResourcePolicy",
    ],
)
def test_policies_that_must_name_their_resource(resource_type: str) -> None:
    named = {"Effect": "Allow", "Principal": {"Service": "x.amazonaws.com"}, "Action": "a:B", "Resource": "arn:x"}
    assert grammar.findings(resource_type, _policy(named)) == []
    assert grammar.findings(resource_type, _policy({**_without(named, "Resource"), "NotResource": "arn:y"})) == []
    found = grammar.findings(resource_type, _policy(_without(named, "Resource")))
    assert found == [f"statement 0 names no Resource: {resource_type} policies need Resource or NotResource"]


@pytest.mark.parametrize(
    ("resource", "ok"),
    [("*", True), (["*"], True), ("arn:aws:kms:us-east-1:123456789012:key/abc", False), (None, False)],
)
def test_kms_key_policy_resource_is_star(resource: Any, ok: bool) -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*"}
    if resource is not None:
        statement["Resource"] = resource
    assert (grammar.findings("AWS::KMS::Key", _policy(statement)) == []) is ok


def test_unknown_types_and_unreadable_policies() -> None:
    assert grammar.findings("AWS::Lambda::Permission", {"anything": True}) == []
    assert grammar.findings("AWS::S3::BucketPolicy", "not json") == [
        "the policy is not a JSON policy document this check can read"
    ]


def test_every_resource_policy_of_the_template_follows_its_grammar() -> None:
    resources = load()["Resources"]
    checked = 0
    for name, resource in resources.items():
        if resource["Type"] in grammar.GRAMMAR:
            prop = grammar.GRAMMAR[resource["Type"]][0]
            if prop in resource.get("Properties", {}):
                checked += 1
                assert grammar.findings(resource["Type"], resource["Properties"][prop]) == [], name
    # The ECR repository, both bucket policies, the topic, both queue policies and the KMS key at least.
    assert checked >= 7


def _cfn_lint(template: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    return subprocess.run(  # noqa: S603 -- the cfn-lint of this venv, fixed argv
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--append-rules",
            str(RULES_DIR),
            "--include-checks",
            "E9101",
            "--",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cfn_lint_runs_the_rule_as_make_static_does(tmp_path: Path) -> None:
    """The rule is wired: cfn-lint loads it from the directory that ``make static`` appends."""
    repository: dict[str, Any] = {
        "Type": "AWS::ECR::Repository",
        "Properties": {"RepositoryPolicyText": _policy(copy.deepcopy(OLD_ECR_STATEMENT))},
    }
    bad = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Repo": repository}}
    result = _cfn_lint(bad, tmp_path)
    assert result.returncode != 0
    assert "E9101 Repo.RepositoryPolicyText: statement 0 has Resource" in result.stdout
    repository["Properties"]["RepositoryPolicyText"]["Statement"][0].pop("Resource")
    result = _cfn_lint(bad, tmp_path)
    assert "E9101" not in result.stdout, result.stdout
    assert "--append-rules cfn_lint_serverless.rules $(CFNLINT_RULES)" in (ROOT / "Makefile").read_text()
    assert "CFNLINT_RULES := tests/testkit/cfnlint_rules" in (ROOT / "Makefile").read_text()
