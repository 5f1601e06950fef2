"""E9101: each service's resource-policy grammar, as its own documentation gives it (issue 17, item 1).

cfn-lint, checkov, cfn-guard and the IAM data check all passed an ECR repository policy with a
``Resource`` element, which ECR refuses at deploy time ("Invalid parameter at 'PolicyText' failed to
satisfy constraint: 'Invalid repository policy provided'"). This rule knows, per resource type, what the
service accepts in a statement (docs/security-checks.md, "Resource-policy grammar", cites each row):

- ``AWS::ECR::Repository`` ``RepositoryPolicyText``: no ``Resource`` (nor ``NotResource``); the policy
  applies to the repository it is attached to.
- ``AWS::ECR::RegistryPolicy`` ``PolicyText``: names its ``Resource`` (the repositories, as every example
  in the ECR guide does). Not "no Resource": that grammar is the repository policy's only.
- S3 bucket, SNS topic, SQS queue and Secrets Manager resource policies: each statement names a
  ``Resource`` or ``NotResource`` (the IAM policy grammar these services use).
- ``AWS::KMS::Key`` ``KeyPolicy``: ``Resource`` is required and is ``"*"`` ("this KMS key").

``AWS::Lambda::Permission`` is not a policy document (Lambda builds the statement) and is not checked.

Intrinsics: ``Fn::If`` is followed into both branches (``AWS::NoValue`` drops a branch), and a policy
given as a JSON string (or ``Fn::Sub`` of one) is parsed, so every statement CloudFormation could send is
seen. Self-contained on purpose: cfn-lint imports this file by path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# How a statement of each policy treats the Resource element.
FORBIDDEN = "forbidden"  # neither Resource nor NotResource
REQUIRED = "required"  # Resource or NotResource
STAR = "star"  # Resource, and only "*"

# resource type -> (property holding the policy, grammar)
GRAMMAR: dict[str, tuple[str, str]] = {
    "AWS::ECR::Repository": ("RepositoryPolicyText", FORBIDDEN),
    "AWS::ECR::RegistryPolicy": ("PolicyText", REQUIRED),
    "AWS::S3::BucketPolicy": ("PolicyDocument", REQUIRED),
    "AWS::SNS::TopicPolicy": ("PolicyDocument", REQUIRED),
    "AWS::SNS::TopicInlinePolicy": ("PolicyDocument", REQUIRED),
    "AWS::SQS::QueuePolicy": ("PolicyDocument", REQUIRED),
    "AWS::SQS::QueueInlinePolicy": ("PolicyDocument", REQUIRED),
    "AWS::SecretsManager::ResourcePolicy": ("ResourcePolicy", REQUIRED),
    "AWS::KMS::Key": ("KeyPolicy", STAR),
}

_SUB_VARIABLE = re.compile(r"\$\{[^}!][^}]*\}")


def alternatives(node: Any) -> Iterator[Any]:
    """Every value ``node`` can take once CloudFormation resolves ``Fn::If`` (``AWS::NoValue`` yields none)."""
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Fn::If" and isinstance(value, list) and len(value) == 3:
            yield from alternatives(value[1])
            yield from alternatives(value[2])
            return
        if key == "Ref" and value == "AWS::NoValue":
            return
    yield node


def _as_document(node: Any) -> Any:
    """A policy given as JSON text (or ``Fn::Sub`` of it) parsed; anything else as it is."""
    text = None
    if isinstance(node, str):
        text = node
    elif isinstance(node, dict) and len(node) == 1 and "Fn::Sub" in node:
        sub = node["Fn::Sub"]
        template = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(template, str):
            # A variable stands for a JSON string's content or a number; either way a placeholder parses.
            text = _SUB_VARIABLE.sub("0", template)
    if text is None:
        return node
    try:
        return json.loads(text)
    except ValueError:
        return None


def statements(policy: Any) -> Iterator[tuple[int, Any]]:
    """(index, statement) for every statement of every alternative of ``policy``."""
    for option in alternatives(policy):
        document = _as_document(option)
        if not isinstance(document, dict):
            yield -1, document
            continue
        for listed in alternatives(document.get("Statement")):
            items = listed if isinstance(listed, list) else [listed]
            for index, item in enumerate(items):
                for statement in alternatives(item):
                    yield index, statement


def findings(resource_type: str, policy: Any) -> list[str]:
    """What breaks ``resource_type``'s grammar in ``policy``; empty when it is all right."""
    if resource_type not in GRAMMAR:
        return []
    grammar = GRAMMAR[resource_type]
    out: list[str] = []
    for index, statement in statements(policy):
        where = f"statement {index}" if index >= 0 else "the policy"
        if not isinstance(statement, dict):
            out.append(f"{where} is not a JSON policy document this check can read")
            continue
        has_resource = "Resource" in statement
        has_not_resource = "NotResource" in statement
        if grammar[1] == FORBIDDEN and (has_resource or has_not_resource):
            element = "Resource" if has_resource else "NotResource"
            out.append(f"{where} has {element}: {resource_type} policies take none (the service refuses the policy)")
        elif grammar[1] == REQUIRED and not (has_resource or has_not_resource):
            out.append(f"{where} names no Resource: {resource_type} policies need Resource or NotResource")
        elif grammar[1] == STAR:
            resources = list(alternatives(statement.get("Resource"))) if has_resource else []
            if not has_resource or has_not_resource or any(r not in ("*", ["*"]) for r in resources):
                out.append(f'{where}: a KMS key policy statement has Resource "*" (the key itself) and nothing else')
    return out


class ResourcePolicyGrammar(CloudFormationLintRule):  # type: ignore[misc]  # cfnlint ships no type hints
    """Resource policies follow their service's grammar (docs/security-checks.md)."""

    id = "E9101"
    shortdesc = "Resource policy grammar per service"
    description = (
        "ECR repository policies have no Resource; bucket, topic, queue, secret and registry policies name one; "
        'KMS key policies use Resource "*"'
    )
    source_url = "docs/security-checks.md (Resource-policy grammar)"
    tags: ClassVar[list[str]] = ["resources", "iam"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        for name, resource in cfn.get_resources(list(GRAMMAR)).items():
            prop = GRAMMAR[resource["Type"]][0]
            policy = resource.get("Properties", {}).get(prop)
            if policy is None:
                continue
            for message in findings(resource["Type"], policy):
                matches.append(RuleMatch(["Resources", name, "Properties", prop], f"{name}.{prop}: {message}"))
        return matches
