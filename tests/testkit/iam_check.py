"""IAM data check: every action in every policy exists and is granted on a resource type it supports.

moto does not enforce IAM, so a grant on the wrong resource type passes every local test and
fails in AWS (issue 13, finding 1: ``guardduty:GetAdministratorAccount`` supports no resource
type, so a grant on ``detector/*`` is denied). This check reads the AWS Service Authorization
Reference as shipped by ``policy_sentry`` (pinned in requirements/dev.txt) and, for the template
rendered under several parameter sets:

- every action (wildcards expanded) must exist in the service's action list;
- in identity policies (roles, groups, users, SAM function policies), each ``Allow`` must name
  ``"*"`` for an action without resource types, and for an action with resource types each
  resource must be ``"*"`` or an ARN of one of those types.

Resource-based policies (key, bucket, queue, topic) are checked for action names only: their
resource is the policy's own resource. Findings that remain are listed in ``ACCEPTED`` with a
written reason; an accepted finding that no longer occurs fails too, so the list stays true.

Run ``PYTHONPATH=layers/shared:tests .venv/bin/python -m testkit.iam_check`` for a report.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from policy_sentry.querying.actions import get_action_data, get_actions_for_service
from policy_sentry.util.arns import does_arn_match

from testkit.template import Rendered

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "redcap-dev",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/redcap-dev/1111-2222",
}

# Parameter sets that between them switch every condition that adds or changes a policy statement.
PARAMETER_SETS: dict[str, dict[str, Any]] = {
    "dev": {"Environment": "dev", "SesEmailIdentity": "redcap@example.org"},
    "prod-create-zone": {
        "Environment": "prod",
        "DomainName": "redcap.example.org",
        "DnsMode": "CreateZone",
        "AdminCidrs": "203.0.113.0/24",
        "AllowedCidrs": "198.51.100.0/24",
    },
    "prod-existing-zone": {
        "Environment": "prod",
        "DomainName": "redcap.example.org",
        "DnsMode": "ExistingZone",
        "HostedZoneId": "Z0123456789ABCDEFGHIJ",
        "SesEmailIdentity": "redcap@example.org",
    },
    "guardduty-off": {"SesEmailIdentity": "redcap@example.org", "EnableGuardDuty": "false"},
    # ECS Express compute with its custom domain, and the stack building the image from a release zip.
    "express-create-zone": {
        "ComputeType": "EcsExpress",
        "DomainName": "redcap.example.org",
        "DnsMode": "CreateZone",
        "AllowHttpEgress": "true",
    },
    "zip-build": {
        "SesEmailIdentity": "redcap@example.org",
        "RedcapSourceZip": "s3://redcap-releases-123/redcap15.5.1.zip",
        "ImageUri": "",
    },
}
SAMPLE_PARAMETERS = {"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/team/redcap:14.5.1"}

# (resource type) -> (what Ref returns, {attribute: what GetAtt returns}); "{n}" is the logical id.
_SECRET = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{{n}}-AbCdEf"
_TYPES: dict[str, tuple[str, dict[str, str]]] = {
    "AWS::SecretsManager::Secret": (_SECRET, {"Id": _SECRET}),
    "AWS::IAM::User": ("{n}", {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:user/{{n}}"}),
    "AWS::IAM::Group": ("{n}", {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:group/{{n}}"}),
    "AWS::IAM::Role": ("{n}", {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{{n}}"}),
    "AWS::S3::Bucket": ("{n}-bucket", {"Arn": f"arn:{PARTITION}:s3:::{{n}}-bucket"}),
    "AWS::KMS::Key": (
        "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        {"Arn": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
    ),
    "AWS::SQS::Queue": (
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{n}}",
        {"Arn": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{{n}}", "QueueName": "{n}"},
    ),
    "AWS::SNS::Topic": (f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{{n}}", {}),
    "AWS::Serverless::Function": ("{n}", {"Arn": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{{n}}"}),
    "AWS::Lambda::Function": ("{n}", {"Arn": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{{n}}"}),
    "AWS::Logs::LogGroup": (
        "/redcap/{n}",
        {"Arn": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:/redcap/{{n}}:*"},
    ),
    "AWS::RDS::DBCluster": (
        "{n}",
        {
            "DBClusterArn": f"arn:{PARTITION}:rds:{REGION}:{ACCOUNT}:cluster:{{n}}",
            "DBClusterResourceId": "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "MasterUserSecret.SecretArn": _SECRET.format(n="rds!cluster-1"),
        },
    ),
    "AWS::AppRunner::Service": (
        f"arn:{PARTITION}:apprunner:{REGION}:{ACCOUNT}:service/{{n}}/0123456789abcdef",
        {
            "ServiceArn": f"arn:{PARTITION}:apprunner:{REGION}:{ACCOUNT}:service/{{n}}/0123456789abcdef",
            "ServiceId": "0123456789abcdef",
        },
    ),
    "AWS::ECS::Cluster": ("{n}", {"Arn": f"arn:{PARTITION}:ecs:{REGION}:{ACCOUNT}:cluster/{{n}}"}),
    "AWS::ECS::ExpressGatewayService": (
        f"arn:{PARTITION}:ecs:{REGION}:{ACCOUNT}:service/redcap-express/{{n}}",
        {
            "ServiceArn": f"arn:{PARTITION}:ecs:{REGION}:{ACCOUNT}:service/redcap-express/{{n}}",
            "Endpoint": "{n}.ecs.example.on.aws",
            "UpdatedAt": "2026-11-28T00:00:00Z",
            "ECSManagedResourceArns.IngressPath.LoadBalancerArn": (
                f"arn:{PARTITION}:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/ecs-express/0123456789abcdef"
            ),
            "ECSManagedResourceArns.IngressPath.ListenerArn": (
                f"arn:{PARTITION}:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/ecs-express/0123456789abcdef/"
                "0123456789abcdef"
            ),
            "ECSManagedResourceArns.IngressPath.ListenerRuleArn": (
                f"arn:{PARTITION}:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/ecs-express/"
                "0123456789abcdef/0123456789abcdef/0123456789abcdef"
            ),
            # A list of alarm ARNs in AWS; one sample ARN is what the resource-type check needs.
            "ECSManagedResourceArns.MetricAlarms": (
                f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{{n}}-rollback"
            ),
        },
    ),
    "AWS::CertificateManager::Certificate": (
        f"arn:{PARTITION}:acm:{REGION}:{ACCOUNT}:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        {},
    ),
    "AWS::ECR::Repository": ("{n}", {"Arn": f"arn:{PARTITION}:ecr:{REGION}:{ACCOUNT}:repository/{{n}}"}),
    "AWS::CodeBuild::Project": ("{n}", {"Arn": f"arn:{PARTITION}:codebuild:{REGION}:{ACCOUNT}:project/{{n}}"}),
    "AWS::Serverless::LayerVersion": (f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:layer:{{n}}:1", {}),
    "AWS::WAFv2::RegexPatternSet": (
        "{n}|1234|REGIONAL",
        {"Arn": f"arn:{PARTITION}:wafv2:{REGION}:{ACCOUNT}:regional/regexpatternset/{{n}}/1234"},
    ),
    "AWS::WAFv2::WebACL": (
        "{n}|1234|REGIONAL",
        {"Arn": f"arn:{PARTITION}:wafv2:{REGION}:{ACCOUNT}:regional/webacl/{{n}}/1234"},
    ),
    "AWS::Route53::HostedZone": ("Z0CREATEDZONE123", {}),
    "AWS::SES::ConfigurationSet": ("{n}", {}),
    "AWS::Scheduler::Schedule": (
        "{n}",
        {"Arn": f"arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT}:schedule/default/{{n}}"},
    ),
}


@dataclass(frozen=True)
class Finding:
    where: str  # "<parameter set>:<resource>/<statement sid or index>"
    action: str
    resource: str
    problem: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What ACCEPTED matches on: the resource/statement, the action and the problem (not the parameter set)."""
        return (self.where.split(":", 1)[1], self.action, self.problem)

    def __str__(self) -> str:
        return f"{self.where}: {self.action} on {self.resource}: {self.problem}"


# Findings kept on purpose, each with its reason. (resource/statement, action, problem) -> reason.
ACCEPTED: dict[tuple[str, str, str], str] = {}


class Renderer:
    """Turns the intrinsic functions of a rendered template into concrete strings."""

    def __init__(self, rendered: Rendered) -> None:
        self.rendered = rendered
        self.resources = rendered.resources
        self.params = {**{k: v for k, v in rendered.params.items() if v is not None}, **PSEUDO}

    def _ref(self, name: str) -> str:
        if name in self.params:
            value = self.params[name]
            return ",".join(value) if isinstance(value, list) else str(value)
        rtype = self.resources[name]["Type"]
        return _TYPES[rtype][0].format(n=name)

    def _getatt(self, name: str, attribute: str) -> str:
        rtype = self.resources[name]["Type"]
        try:
            return _TYPES[rtype][1][attribute].format(n=name)
        except KeyError:
            raise KeyError(
                f"no sample value for {rtype} {name}.{attribute}: add it to testkit.iam_check._TYPES"
            ) from None

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        local = {k: self.value(v) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref in local:
                return str(local[ref])
            if "." in ref and ref.split(".", 1)[0] in self.resources:
                resource, attribute = ref.split(".", 1)
                return self._getatt(resource, attribute)
            return self._ref(ref)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self.value(v) for k, v in node.items()}
        ((key, arg),) = node.items()
        if key == "Ref":
            return self._ref(arg)
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._getatt(resource, attribute)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(text, variables)
        if key == "Fn::Join":
            return str(arg[0]).join(str(v) for v in self.value(arg[1]))
        if key == "Fn::Split":
            return str(self.value(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self.value(arg[1])[int(self.value(arg[0]))]
        return {key: self.value(arg)}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _identity_statements(resources: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in resources.items():
        props = res.get("Properties", {})
        rtype = res["Type"]
        documents: list[dict[str, Any]] = []
        if rtype in ("AWS::IAM::Role", "AWS::IAM::Group", "AWS::IAM::User"):
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif rtype in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents = [props["PolicyDocument"]]
        elif rtype == "AWS::Serverless::Function":
            for policy in props.get("Policies", []):
                assert isinstance(policy, dict), f"{name}: SAM policy templates are not checked; write the statements"
                assert "Statement" in policy, f"{name}: SAM policy templates are not checked; write the statements"
                documents.append(policy)
        for document in documents:
            for index, statement in enumerate(document["Statement"]):
                yield f"{name}/{statement.get('Sid', index)}", statement


def _resource_statements(resources: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    keys = {
        "AWS::KMS::Key": "KeyPolicy",
        "AWS::S3::BucketPolicy": "PolicyDocument",
        "AWS::SQS::QueuePolicy": "PolicyDocument",
        "AWS::SNS::TopicPolicy": "PolicyDocument",
        "AWS::ECR::Repository": "RepositoryPolicyText",
    }
    for name, res in resources.items():
        key = keys.get(res["Type"])
        if key and key in res.get("Properties", {}):
            for index, statement in enumerate(res["Properties"][key]["Statement"]):
                yield f"{name}/{statement.get('Sid', index)}", statement


@functools.cache
def _service_actions(service: str) -> tuple[str, ...]:
    return tuple(get_actions_for_service(service))


def expand(action: str) -> list[str]:
    """Concrete actions an action pattern names (``kms:Encrypt*``), case-insensitively."""
    service, _, name = action.partition(":")
    known = _service_actions(service.lower())
    if "*" not in name and "?" not in name:
        return [a for a in known if a.lower() == action.lower()]
    return [a for a in known if fnmatch.fnmatchcase(a.lower(), action.lower())]


@functools.cache
def resource_formats(action: str) -> tuple[str, ...]:
    """ARN formats the action takes ("*" alone = no resource type)."""
    service, _, name = action.partition(":")
    data = get_action_data(service, name)
    return tuple(sorted({entry["resource_arn_format"] for entry in data.get(service, [])}))


def check_template(rendered: Rendered, label: str) -> list[Finding]:
    renderer = Renderer(rendered)
    findings: list[Finding] = []
    resources = rendered.resources
    for kind, statements in (
        ("identity", _identity_statements(resources)),
        ("resource", _resource_statements(resources)),
    ):
        for where, statement in statements:
            where = f"{label}:{where}"
            assert "NotAction" not in statement, f"{where}: NotAction is not checked"
            actions = _as_list(statement["Action"])
            targets = [str(renderer.value(r)) for r in _as_list(statement.get("Resource", "*"))]
            for action in actions:
                if action == "*":
                    findings.append(Finding(where, action, ",".join(targets), "every action of every service"))
                    continue
                concrete = expand(action)
                if not concrete:
                    findings.append(Finding(where, action, ",".join(targets), "no such action"))
                    continue
                if kind != "identity" or statement["Effect"] != "Allow":
                    continue
                for one in concrete:
                    findings.extend(_resource_findings(where, one, targets, wildcard=action != one))
    return findings


def _type_token(arn: str) -> tuple[str, str]:
    """(service, resource type) of an ARN: ``log-group`` of ``...:logs:r:a:log-group:name:*``."""
    parts = arn.split(":", 5)
    return parts[2], re.split(r"[:/]", parts[5], maxsplit=1)[0]


def _matches(target: str, arn_format: str) -> bool:
    """Whether ``target`` names resources of the type ``arn_format`` describes.

    A concrete ARN must be of that type exactly (policy_sentry's comparison). An ARN with ``*``
    matches by IAM's string rules, so ``log-group:name:*`` also covers that group's log streams:
    there the service and the resource type's leading word must agree.
    """
    if "*" not in target.split(":", 5)[-1]:
        return does_arn_match(target, arn_format)
    known = {"${Partition}": PARTITION, "${Region}": REGION, "${Account}": ACCOUNT}
    pieces = re.split(r"(\$\{[A-Za-z]+\})", arn_format)
    pattern = "".join(
        (re.escape(known[p]) if p in known else ".+") if p.startswith("${") else re.escape(p) for p in pieces
    )
    if re.fullmatch(pattern, target.replace("*", "x")):
        return True
    leading = _type_token(arn_format)[1]
    return not leading.startswith("$") and _type_token(target) == _type_token(arn_format)


def _resource_findings(where: str, action: str, targets: list[str], *, wildcard: bool) -> list[Finding]:
    formats = resource_formats(action)
    typed = [f for f in formats if f != "*"]
    out = []
    for target in targets:
        if target == "*":
            continue
        if not typed:
            out.append(Finding(where, action, target, "supports no resource type: grant it on *"))
        elif not any(_matches(target, f) for f in typed) and not wildcard:
            out.append(Finding(where, action, target, f"not a resource type it supports ({', '.join(typed)})"))
    if wildcard:
        # A pattern (kms:Encrypt*) only needs each target to suit one of the actions it names;
        # the caller reports per concrete action, so nothing more here.
        return [f for f in out if f.problem.startswith("supports no resource type")]
    return out


def run(
    templates: dict[str, Rendered] | None = None,
) -> tuple[list[Finding], list[Finding], list[tuple[str, str, str]]]:
    """(new findings, accepted findings, accepted keys that no longer occur)."""
    if templates is None:
        templates = {label: Rendered(**{**SAMPLE_PARAMETERS, **params}) for label, params in PARAMETER_SETS.items()}
    findings = [f for label, rendered in templates.items() for f in check_template(rendered, label)]
    new = [f for f in findings if f.key not in ACCEPTED]
    accepted = [f for f in findings if f.key in ACCEPTED]
    seen = {f.key for f in findings}
    stale = [key for key in ACCEPTED if key not in seen]
    return new, accepted, stale


def with_statement(rendered: Rendered, resource: str, statement: dict[str, Any]) -> Rendered:
    """A copy of ``rendered`` with one more statement in ``resource``'s first inline policy (for tests)."""
    planted = copy.copy(rendered)
    planted.template = copy.deepcopy(rendered.template)
    props = planted.template["Resources"][resource]["Properties"]
    policies = props["Policies"]
    document = policies[0] if "Statement" in policies[0] else policies[0]["PolicyDocument"]
    document["Statement"].append(statement)
    return planted


def main() -> int:
    new, accepted, stale = run()
    for finding in accepted:
        print(f"accepted: {finding}  -- {ACCEPTED[finding.key]}")
    for finding in new:
        print(f"FINDING: {finding}")
    for key in stale:
        print(f"STALE accepted entry (no longer occurs): {key}")
    checked = len(PARAMETER_SETS)
    if new or stale:
        print(f"IAM data check: {len(new)} finding(s), {len(stale)} stale accepted entr(ies) over {checked} renderings")
        return 1
    print(f"IAM data check: no findings over {checked} renderings ({len(accepted)} accepted with a reason)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
