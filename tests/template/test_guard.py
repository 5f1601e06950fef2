"""CloudFormation Guard: this repo's HIPAA Security rules pass on dev and prod and catch planted violations.

Needs the cfn-guard binary that ``make install`` puts under .tools/cfn-guard (``make test`` installs
it before the tests run).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest

from testkit import guard
from testkit.template import Rendered, load

Document = dict[str, Any]

pytestmark = pytest.mark.skipif(not guard.binary().exists(), reason="cfn-guard not installed: run make install")


@pytest.fixture(scope="module")
def documents() -> dict[str, Document]:
    return {name: guard.rendered_document(Rendered(**params)) for name, params in guard.ENVIRONMENTS.items()}


def _failed_rules(document: Document) -> set[str]:
    status, output = guard.validate({"planted": document})
    failed = set(re.findall(r"/(REDCAP_[A-Z0-9_]+)\s+FAIL", output))
    assert (status == 0) == (not failed), output
    return failed


def test_rules_pass_for_dev_and_prod(documents: dict[str, Document]) -> None:
    status, output = guard.validate(documents)
    assert status == 0, output


def _resources(document: Document, rtype: str) -> list[Document]:
    return [r for r in document["Resources"].values() if r["Type"] == rtype]


def _no_tls_for_database(doc: Document) -> None:
    _resources(doc, "AWS::RDS::DBClusterParameterGroup")[0]["Properties"]["Parameters"].pop("require_secure_transport")


def _string_secure_transport(doc: Document) -> None:
    # Issue 13, finding 11: the string "false" never equals Guard's boolean false.
    statement = doc["Resources"]["FileBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Condition"]["Bool"]["aws:SecureTransport"] = "false"


def _unencrypted_log_group(doc: Document) -> None:
    _resources(doc, "AWS::Logs::LogGroup")[0]["Properties"].pop("KmsKeyId")


def _log_group_forever(doc: Document) -> None:
    _resources(doc, "AWS::Logs::LogGroup")[0]["Properties"].pop("RetentionInDays")


def _queue_without_tls_policy(doc: Document) -> None:
    doc["Resources"]["ExtraQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": "k"}}


def _unrotated_secret(doc: Document) -> None:
    doc["Resources"]["ExtraSecret"] = {"Type": "AWS::SecretsManager::Secret", "Properties": {"KmsKeyId": "k"}}


def _service_wildcard(doc: Document) -> None:
    role = doc["Resources"]["CronCallerFunctionRole"]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"].append({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})


def _public_bucket(doc: Document) -> None:
    doc["Resources"]["FileBucket"]["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] = False


def _key_without_rotation(doc: Document) -> None:
    doc["Resources"]["KmsKey"]["Properties"]["EnableKeyRotation"] = False


def _trust_without_account(doc: Document) -> None:
    trust = doc["Resources"]["CronSchedulerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    trust.pop("Condition")


PLANTED: dict[str, tuple[Callable[[Document], None], str]] = {
    "database accepts plain text": (_no_tls_for_database, "REDCAP_RDS_REQUIRES_TLS"),
    "SecureTransport as a string": (_string_secure_transport, "REDCAP_S3_TLS_ONLY"),
    "log group without KMS": (_unencrypted_log_group, "REDCAP_LOG_GROUP_ENCRYPTED"),
    "log group kept forever": (_log_group_forever, "REDCAP_LOG_GROUP_RETENTION"),
    "queue without TLS deny": (_queue_without_tls_policy, "REDCAP_SQS_SNS_TLS_ONLY"),
    "secret that never rotates": (_unrotated_secret, "REDCAP_SECRETS_ROTATE"),
    "s3:* in a function's role": (_service_wildcard, "REDCAP_IAM_NO_SERVICE_WILDCARDS"),
    "bucket open to the public": (_public_bucket, "REDCAP_S3_NO_PUBLIC_ACCESS"),
    "key without rotation": (_key_without_rotation, "REDCAP_KMS_KEY_ROTATION"),
    "service trust without account": (_trust_without_account, "REDCAP_SERVICE_TRUST_NAMES_ACCOUNT"),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_each_planted_violation_fails_exactly_its_rule(documents: dict[str, Document], case: str) -> None:
    plant, rule = PLANTED[case]
    document = copy.deepcopy(documents["dev"])
    plant(document)
    assert _failed_rules(document) == {rule}


def test_prod_rules_hold_prod_to_deletion_protection(documents: dict[str, Document]) -> None:
    document = copy.deepcopy(documents["prod"])
    document["Resources"]["DbCluster"]["Properties"]["DeletionProtection"] = False
    assert _failed_rules(document) == {"REDCAP_PROD_DATA_SURVIVES_DELETION"}
    # ...and leave dev, which must delete cleanly, alone
    assert documents["dev"]["Resources"]["DbCluster"]["Properties"]["DeletionProtection"] is False


def test_every_rule_names_its_registry_counterpart() -> None:
    text = (guard.RULES / "hipaa-security.guard").read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=rule )", text)
    for before, rule in itertools.pairwise(blocks):
        name = rule.split()[1]
        comments = [line for line in before.splitlines() if line.startswith("#")]
        assert any(line.startswith("# Registry: ") for line in comments), name


def test_every_suppression_carries_its_reason() -> None:
    for name, resource in load()["Resources"].items():
        suppressed = resource.get("Metadata", {}).get("guard", {})
        for rule in suppressed.get("SuppressedRules", []):
            assert suppressed["Reasons"][rule].strip(), f"{name} suppresses {rule} without a reason"
