"""The foundation resources the Lambdas act on, created in the emulators as CloudFormation would.

Names and settings come from ``template.yaml`` (through ``local.stack``) where
the template fixes them; physical ids are recorded so function environments
and custom-resource properties resolve against them.
"""

from __future__ import annotations

from local.scenarios import Local

APP_RUNNER_SERVICE = "redcap"


def compute(local: Local) -> None:
    """Whichever compute the rendered template has: App Runner (emulator) or ECS Express (moto)."""
    if local.stack.has("AppRunnerService"):
        app_runner(local)
    else:
        ecs_express(local)


def ecs_express(local: Local) -> None:
    """The ECS Express service as CloudFormation leaves it (service, ALB, listener, rule), in moto."""
    if "express" in local.services:
        return
    module = local.emulator("express")
    service = module.ExpressService.create(cluster=f"{local.stack.pseudo['AWS::StackName']}-express")
    local.services["express"] = service
    local.services["express-initial-deployments"] = service.deployment_ids()
    local.stack.physical.update(service.attributes())


def app_runner(local: Local) -> None:
    """The App Runner service, in the App Runner emulator (moto has no App Runner)."""
    if "apprunner" in local.services:
        return
    module = local.emulator("apprunner")
    emulator = module.AppRunnerEmulator(records_after=2)
    if "apprunner" in local.broken:
        emulator.faults.access_denied = {
            "AssociateCustomDomain",
            "DescribeCustomDomains",
            "DisassociateCustomDomain",
            "DescribeService",
        }
    url = local.exit_stack.enter_context(emulator.serve())
    local.set_env("AWS_ENDPOINT_URL_APPRUNNER", url)
    arn = emulator.add_service(APP_RUNNER_SERVICE)
    local.services["apprunner"] = emulator
    local.stack.physical["AppRunnerService"] = arn
    local.stack.physical["AppRunnerService.ServiceArn"] = arn
    local.stack.physical["AppRunnerService.ServiceId"] = arn.rsplit("/", 1)[1]
    local.stack.physical["AppRunnerService.ServiceUrl"] = emulator.dns_target(arn)


def hosted_zone(local: Local) -> None:
    if "HostedZone" in local.stack.physical:
        return
    name = local.stack.props("HostedZone")["Name"]
    zone = local.client("route53").create_hosted_zone(Name=name, CallerReference="make-local")
    local.stack.physical["HostedZone"] = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]


def function_arns(local: Local) -> None:
    """``!GetAtt <Function>.Arn`` for every function (custom resources' ServiceToken)."""
    stack = local.stack
    for name, res in stack.resources.items():
        if res["Type"] == "AWS::Serverless::Function" and f"{name}.Arn" not in stack.physical:
            arn = f"arn:aws:lambda:{stack.pseudo['AWS::Region']}:{stack.pseudo['AWS::AccountId']}:function:{name}"
            stack.physical[f"{name}.Arn"] = arn
            stack.physical[name] = f"{stack.pseudo['AWS::StackName']}-{name}"


def secret(local: Local, logical_id: str, value: str | None = None) -> str:
    """A Secrets Manager secret as the template declares it (SecretString resolved)."""
    stack = local.stack
    if logical_id not in stack.physical:
        props = stack.props(logical_id)
        text = value if value is not None else stack.value(props["SecretString"], f"{logical_id}.SecretString")
        created = local.client("secretsmanager").create_secret(
            Name=f"{stack.pseudo['AWS::StackName']}-{logical_id}", SecretString=text
        )
        stack.physical[logical_id] = created["ARN"]
    return stack.physical[logical_id]


def rotation_targets(local: Local) -> None:
    """What the rotation functions act on: IAM users and their secrets, the file bucket, the DB."""
    stack = local.stack
    name = stack.pseudo["AWS::StackName"]
    region, account = stack.pseudo["AWS::Region"], stack.pseudo["AWS::AccountId"]
    iam = local.client("iam")
    for user in ("S3User", "SesUser"):
        if user not in stack.physical:
            created = iam.create_user(UserName=f"{name}-{user}")["User"]
            stack.physical[user] = created["UserName"]
            stack.physical[f"{user}.Arn"] = created["Arn"]
    for logical_id in ("S3UserSecret", "SesUserSecret"):
        secret(local, logical_id)
    if "FileBucket" not in stack.physical:
        bucket = f"{name}-filebucket"
        local.client("s3").create_bucket(Bucket=bucket)
        stack.physical["FileBucket"] = bucket
        stack.physical["FileBucket.Arn"] = f"arn:aws:s3:::{bucket}"
    if "DbCluster" not in stack.physical:
        # The Data API in moto answers any statement; the cluster itself need not exist.
        cluster = f"{name}-dbcluster"
        stack.physical["DbCluster"] = cluster
        stack.physical["DbCluster.DBClusterArn"] = f"arn:aws:rds:{region}:{account}:cluster:{cluster}"
        master = local.client("secretsmanager").create_secret(
            Name=f"rds!cluster-{name}", SecretString='{"username": "redcap_admin", "password": "local-only"}'
        )
        stack.physical["DbCluster.MasterUserSecret.SecretArn"] = master["ARN"]
    # The S3 rotation's own Data API user (Custom::RedcapDatabase creates it in AWS).
    secret(local, "RotationDbUserSecret", '{"username": "redcap_rotation", "password": "local-only-rotation"}')
    if "KmsKey.Arn" not in stack.physical:
        key = local.client("kms").create_key(Description="make local")["KeyMetadata"]
        stack.physical["KmsKey"] = key["KeyId"]
        stack.physical["KmsKey.Arn"] = key["Arn"]
