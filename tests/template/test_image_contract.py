"""One contract between template and image: what the compute resource gives the container is
exactly what the image reads (containers/redcap/rootfs/opt/redcap-image/contract.json)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from testkit.template import Rendered

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ROOT = ROOT / "containers" / "redcap" / "rootfs" / "opt" / "redcap-image"
CONTRACT = json.loads((IMAGE_ROOT / "contract.json").read_text())

COMBOS = [
    {"DomainName": domain, "SesEmailIdentity": email, "DbReaderCount": readers, "Environment": env}
    for domain, email, readers, env in itertools.product(
        ["", "redcap.example.org"], ["", "redcap@example.org"], ["0", "1", "2"], ["dev", "prod"]
    )
    if domain or email  # the SesNeedsAnIdentity rule refuses neither
]


def compute_contracts(r: Rendered) -> dict[str, tuple[dict[str, Any], set[str]]]:
    """Per compute resource: environment (name -> value) and the secret names it passes."""
    out: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for name, res in r.resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::AppRunner::Service":
            image = props["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
            env = {e["Name"]: e["Value"] for e in image.get("RuntimeEnvironmentVariables", [])}
            secrets = {e["Name"] for e in image.get("RuntimeEnvironmentSecrets", [])}
            out[name] = (env, secrets)
        elif res["Type"] == "AWS::ECS::ExpressGatewayService":
            container = props["PrimaryContainer"]
            env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            secrets = {e["Name"] for e in container.get("Secrets", [])}
            out[name] = (env, secrets)
    assert out, "no compute resource rendered"
    return out


def image_reads() -> set[str]:
    """Every variable name the image's code reads through rc_env()/rc_secret()."""
    names: set[str] = set()
    for path in IMAGE_ROOT.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            names |= set(re.findall(r"rc_(?:env|secret|raw)\('([A-Z0-9_]+)'\)", text))
    # Apache reads ${NAME} from the environment, except names the image Defines at build time.
    for path in (IMAGE_ROOT.parents[1] / "etc" / "apache2").rglob("*.conf"):
        text = path.read_text()
        names |= set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)) - {"REDCAP_VERSION"}
    return names


@pytest.mark.parametrize("params", COMBOS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_template_gives_exactly_what_the_image_reads(params: dict[str, str]) -> None:
    r = Rendered(**params)
    variables, secrets = CONTRACT["variables"], CONTRACT["secrets"]
    for resource, (env, secret_names) in compute_contracts(r).items():
        unread = set(env) - set(variables)
        assert not unread, f"{resource} sets variables the image never reads: {unread}"
        required = {n for n, spec in variables.items() if spec["required"]}
        assert required <= set(env), f"{resource} misses required variables: {required - set(env)}"
        assert secret_names == set(secrets), resource
        # Optional variables follow their conditions.
        assert ("DB_READ_HOSTNAME" in env) == (params["DbReaderCount"] != "0")
        assert ("REDCAP_BASE_URL" in env) == bool(params["DomainName"])
        # Nothing secret travels as a plain variable, nothing platform- or local-only is set.
        assert not set(env) & (set(CONTRACT["platform"]) | set(CONTRACT["local_only"]))


def test_every_compute_resource_carries_the_same_contract() -> None:
    for params in COMBOS:
        contracts = list(compute_contracts(Rendered(**params)).values())
        names = {(frozenset(env), frozenset(secrets)) for env, secrets in contracts}
        assert len(names) == 1, params


def test_the_image_reads_every_contract_name_and_nothing_else() -> None:
    declared = set(CONTRACT["variables"]) | set(CONTRACT["secrets"]) | set(CONTRACT["platform"])
    declared |= set(CONTRACT["local_only"])
    assert image_reads() == declared


def test_the_image_tests_run_with_the_contract() -> None:
    from image.conftest import contract_env  # the env every image test starts from

    class _Db:
        name, user, password = "redcap", "app", "pw"

    class _Maria:
        port = 3306

    env = contract_env(_Db(), _Maria(), None)  # type: ignore[arg-type]
    contract = set(CONTRACT["variables"]) | set(CONTRACT["secrets"])
    assert set(env) - contract == {"DB_AUTH_MODE", "DB_PASSWORD"}  # password mode: MariaDB has no IAM plugin
    assert contract - set(env) == {"DB_READ_HOSTNAME"}


def test_runtime_role_reads_exactly_the_passed_secrets_and_never_the_master_secret() -> None:
    r = Rendered()
    image = r.props("AppRunnerService")["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
    passed = [e["Value"] for e in image["RuntimeEnvironmentSecrets"]]
    statements = r.props("AppRunnerInstanceRole")["Policies"][0]["PolicyDocument"]["Statement"]
    reads = next(s for s in statements if s.get("Sid") == "ReadOwnSecrets")["Resource"]
    assert sorted(map(json.dumps, reads)) == sorted(map(json.dumps, passed))
    assert "MasterUserSecret" not in json.dumps(r.props("AppRunnerInstanceRole"))
    iam = next(s for s in statements if s.get("Sid") == "IamDatabaseAuthentication")
    assert iam["Action"] == "rds-db:connect"
    assert "${DbIamUserName}" in json.dumps(iam["Resource"])


@pytest.mark.parametrize("domain", ["", "redcap.example.org"])
def test_database_setup_runs_before_the_service_and_base_url_after(domain: str) -> None:
    r = Rendered(DomainName=domain, SesEmailIdentity="" if domain else "a@example.org")
    # The service's environment takes DB_NAME and DB_IAM_USER from RedcapDatabase: it starts after it.
    db = r.props("RedcapDatabase")
    assert db["IamUserName"] == r.params["DbIamUserName"]
    assert db["SecretArn"] == {"Fn::GetAtt": ["DbCluster", "MasterUserSecret.SecretArn"]}
    base = r.props("RedcapBaseUrl")["BaseUrl"]
    assert base == (domain or {"Fn::GetAtt": ["AppRunnerService", "ServiceUrl"]})
    env = compute_contracts(r)["AppRunnerService"][0]
    assert env["DB_IAM_USER"] == {"Fn::GetAtt": ["RedcapDatabase", "IamUserName"]}


def test_database_setup_function_is_scoped_to_this_cluster_and_the_master_secret() -> None:
    statements = Rendered().props("DatabaseSetupFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["DataApiOnThisCluster"]["Resource"] == {"Fn::GetAtt": ["DbCluster", "DBClusterArn"]}
    assert by_sid["DataApiUsesTheMasterSecret"]["Resource"] == {
        "Fn::GetAtt": ["DbCluster", "MasterUserSecret.SecretArn"]
    }
    assert by_sid["ReadTheRotationUserSecret"]["Resource"] == {"Ref": "RotationDbUserSecret"}
    # Issue 18 item 6: a changed DbSnapshotIdentifier is refused except in its rollback (this stack only).
    assert by_sid["ReadThisStacksStatus"]["Resource"] == {"Ref": "AWS::StackId"}
    assert set(by_sid) == {
        "OwnLogGroupOnly",
        "ActiveTracing",
        "DataApiOnThisCluster",
        "DataApiUsesTheMasterSecret",
        "ReadTheRotationUserSecret",
        "ReadThisStacksStatus",
        "SecretsAreEncryptedWithTheStackKey",
    }


def test_only_the_database_setup_resource_uses_the_master_secret() -> None:
    r = Rendered()
    users = {
        name
        for name, res in r.resources.items()
        if "MasterUserSecret" in json.dumps(res) and res["Type"] not in ("AWS::RDS::DBCluster",)
    }
    assert users == {"DatabaseSetupFunctionRole", "RedcapDatabase", "RedcapBaseUrl"}


def test_health_check_path_cannot_be_redcap_itself() -> None:
    spec = Rendered().template["Parameters"]["HealthCheckPath"]
    pattern = re.compile(spec["AllowedPattern"])
    assert spec["Default"] == "/healthz"
    assert pattern.fullmatch(spec["Default"])
    assert not pattern.fullmatch("/")
    assert pattern.fullmatch("/health/ready")


def test_admin_secret_is_generated_and_output() -> None:
    r = Rendered()
    gen = r.props("RedcapAdminSecret")["GenerateSecretString"]
    assert json.loads(gen["SecretStringTemplate"]) == {"username": "site_admin"}
    assert gen["GenerateStringKey"] == "password"
    assert r.outputs["AdminPasswordSecretArn"]["Value"] == {"Ref": "RedcapAdminSecret"}


def test_database_side_of_redcaps_configuration_check() -> None:
    params = Rendered().props("DbClusterParameterGroup")["Parameters"]
    assert params["sql_generate_invisible_primary_key"] == "0"
    assert int(Rendered().params["DbMaxAllowedPacket"]) >= 128 * 1024 * 1024


def test_the_image_docs_list_exactly_the_contract() -> None:
    """docs/image.md's "What the container receives" tables name every contract entry, and only those."""
    contract = CONTRACT
    docs = (ROOT / "docs" / "image.md").read_text(encoding="utf-8")
    section = docs.split("## What the container receives")[1].split("\n## ")[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    named = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    assert named == set(contract["variables"]) | set(contract["secrets"])


def test_apache_starts_without_any_secret_of_the_contract() -> None:
    """The entrypoint scrubs every contract secret (and the local DB_PASSWORD) from Apache's environment."""
    entrypoint = (IMAGE_ROOT / "bin" / "entrypoint").read_text(encoding="utf-8")
    scrubbed = re.search(r"^all_secrets=\(([^)]*)\)$", entrypoint, re.M)
    per_request = re.search(r"^request_secrets=\(([^)]*)\)$", entrypoint, re.M)
    assert scrubbed
    assert per_request
    assert set(scrubbed.group(1).split()) == set(CONTRACT["secrets"]) | {"DB_PASSWORD"}
    # Only what REDCap's database.php needs per request is left as a file for the web user.
    assert set(per_request.group(1).split()) == {"DB_SALT", "DB_PASSWORD"}
    assert 'setsid env "${scrub[@]}" apache2' in entrypoint
