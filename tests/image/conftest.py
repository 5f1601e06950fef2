"""Fixtures for the image tests: the image built from a stand-in release, a real MariaDB,
an SES SMTP stand-in (STARTTLS + AUTH) and a container-credentials stand-in, all on loopback."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from redcap_ctl.rotation.smtp import derive_smtp_password
from testkit.emulators import container_credentials, ses_smtp
from testkit.image_harness import (
    MariaDB,
    Pki,
    RedcapContainer,
    build_mariadb_image,
    build_standin_image,
    free_port,
)
from testkit.image_harness import contract_env as harness_env

REGION = "us-east-1"


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    version: str
    context_hash: str
    pki: Pki
    workdir: Path


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    workdir = tmp_path_factory.mktemp("image")
    pki = Pki.create(workdir / "pki")
    info = build_standin_image(workdir, pki)
    build_mariadb_image()
    return BuiltImage(info["IMAGE"], info["VERSION"], info["CONTEXT_HASH"], pki, workdir)


@pytest.fixture(scope="session")
def mariadb(built_image: BuiltImage) -> Iterator[MariaDB]:
    db = MariaDB(built_image.pki).start()
    try:
        yield db
    finally:
        db.stop()


@dataclass(frozen=True)
class Database:
    name: str
    user: str
    password: str


@pytest.fixture
def database(mariadb: MariaDB) -> Iterator[Database]:
    """A fresh schema and app user per test, created with the stack's own grant statements."""
    suffix = uuid.uuid4().hex[:8]
    db = Database(f"redcap_{suffix}", f"app_{suffix}", secrets.token_urlsafe(18))
    mariadb.create_schema_and_user(db.name, db.user, db.password)
    try:
        yield db
    finally:
        mariadb.sql(f"DROP DATABASE IF EXISTS `{db.name}`; DROP USER IF EXISTS '{db.user}'@'%';")


@dataclass
class Smtp:
    server: ses_smtp.LocalSes
    username: str
    password: str


@pytest.fixture(scope="session")
def smtp(built_image: BuiltImage) -> Iterator[Smtp]:
    """SES SMTP stand-in: STARTTLS with a certificate from the local CA, AUTH against a moto IAM key."""
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="redcap-ses")
        key = iam.create_access_key(UserName="redcap-ses")["AccessKey"]
        pki = built_image.pki.directory
        with ses_smtp.serve((pki / "smtp-chain.pem", pki / "server.key"), REGION) as server:
            yield Smtp(server, key["AccessKeyId"], derive_smtp_password(key["SecretAccessKey"], REGION))


@pytest.fixture(scope="session")
def credentials() -> Iterator[container_credentials.CredentialsEndpoint]:
    with container_credentials.serve() as endpoint:
        yield endpoint


ADMIN_PASSWORD = "Initial-Admin-" + "p4ss"  # the stack generates this; tests use a fixed one


def contract_env(database: Database, mariadb: MariaDB, smtp: Smtp | None) -> dict[str, str]:
    """Everything the template gives the container, plus password mode for MariaDB."""
    return harness_env(
        db_name=database.name,
        db_user=database.user,
        db_password=database.password,
        db_port=mariadb.port,
        smtp_port=smtp.server.port if smtp else None,
        smtp_credentials=(smtp.username, smtp.password) if smtp else None,
        admin_password=ADMIN_PASSWORD,
    )


@pytest.fixture
def make_container(
    built_image: BuiltImage, mariadb: MariaDB, database: Database, smtp: Smtp
) -> Iterator[Callable[..., RedcapContainer]]:
    """Starts containers of the image against this test's database; removes them afterwards."""
    started: list[RedcapContainer] = []
    base_env = contract_env(database, mariadb, smtp)

    def make(
        env: dict[str, str] | None = None,
        drop: tuple[str, ...] = (),
        start: bool = True,
        image: str | None = None,
        volumes: tuple[str, ...] = (),
    ) -> RedcapContainer:
        full = {**base_env, "LISTEN_PORT": str(free_port()), **(env or {})}
        for name in drop:
            full.pop(name, None)
        # The SMTP stand-in's certificate chains to the local CA: the image trusts it for mail here.
        extra = ["-v", f"{built_image.pki.ca}:/etc/ssl/certs/ca-certificates.crt:ro"]
        for volume in volumes:
            extra += ["-v", volume]
        container = RedcapContainer(image or built_image.ref, full, built_image.workdir, extra_args=extra)
        started.append(container)
        return container.start() if start else container

    yield make
    for container in started:
        container.remove()
