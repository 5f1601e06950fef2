"""Builds and runs the REDCap image with podman, on loopback only (host network).

Used by the image tests and the image benchmarks. Every container gets a unique name and is
removed at the end; secrets reach containers through an ``--env-file`` (mode 0600), never on
a command line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from redcap_ctl.database import app_user_statements, schema_statement
from testkit.redcap_release import write_release_zip

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "containers"
# The REDCap image builds on trixie (its Dockerfile pins the public trixie-slim by digest; this
# local stand-in is debootstrapped from the same suite). The test MariaDB stays on bookworm: it
# stands in for Aurora, not for anything the image ships.
BASE_IMAGE = "localhost/debian-base:trixie"
MARIADB_BASE_IMAGE = "localhost/debian-base:bookworm"
MARIADB_IMAGE = "localhost/redcap-test-mariadb:latest"
HOST = "127.0.0.1"


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS / "podman" / "containers.conf"))
    return env


def podman(*args: str, check: bool = True, input_text: str | None = None, timeout: float = 600) -> str:
    if shutil.which("podman") is None:
        raise RuntimeError("podman is not installed: run .ci/install-container-tools (see docs/image.md)")
    done = subprocess.run(
        ["podman", *args],
        input=input_text,
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Pki:
    """A local CA standing in for the RDS CA bundle, and a server certificate for 127.0.0.1."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local stand-in for the RDS CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
        (directory / "server.pem").write_bytes(server.public_bytes(pem))
        (directory / "server.key").write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        (directory / "smtp-chain.pem").write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
        for name in ("ca.pem", "server.pem", "server.key"):
            (directory / name).chmod(0o644)
        directory.chmod(0o755)
        return cls(directory)


def ensure_base_image(image: str = BASE_IMAGE) -> None:
    subprocess.run(
        ["bash", str(CONTAINERS / "podman" / "base-image.sh"), image], check=True, env=podman_env(), timeout=900
    )


def build_redcap_image(
    zip_path: Path, ca_bundle: Path, tag: str | None = None, extensions: tuple[Path, str] | None = None
) -> dict[str, str]:
    """Runs containers/redcap/build.sh; returns its IMAGE/VERSION/CONTEXT_HASH lines.

    ``extensions``: a folder of module zips and language files and the S3 prefix it stands for.
    """
    cmd = [str(CONTAINERS / "redcap" / "build.sh"), "--zip", str(zip_path), "--ca-bundle", str(ca_bundle)]
    cmd += ["--base-image", BASE_IMAGE]
    if tag:
        cmd += ["--tag", tag]
    if extensions:
        cmd += ["--extensions", str(extensions[0]), "--extensions-prefix", extensions[1]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=podman_env(), timeout=1200, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"build.sh failed ({done.returncode}): {done.stderr.strip()[-3000:]}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def build_mariadb_image() -> None:
    ensure_base_image(MARIADB_BASE_IMAGE)
    podman(
        "build", "--pull=never", "--format", "docker", "--build-arg", f"BASE_IMAGE={MARIADB_BASE_IMAGE}",
        "-t", MARIADB_IMAGE, str(ROOT / "tests" / "image" / "mariadb"),
    )  # fmt: skip


def build_standin_image(workdir: Path, pki: Pki) -> dict[str, str]:
    ensure_base_image()
    zip_path = write_release_zip(workdir)
    return build_redcap_image(zip_path, pki.ca)


def contract_env(
    *,
    db_name: str,
    db_user: str,
    db_password: str,
    db_port: int,
    smtp_port: int | None,
    smtp_credentials: tuple[str, str] | None,
    admin_password: str,
) -> dict[str, str]:
    """What the template gives the container (contract.json), in password mode for MariaDB."""
    ses: dict[str, str] = {"UserName": "redcap-ses"}
    if smtp_credentials is not None:
        user, password = smtp_credentials
        ses |= {"SmtpUsername": user, "SmtpPassword": password, "AccessKeyId": user}
    return {
        "LISTEN_PORT": str(free_port()),
        "HEALTH_CHECK_PATH": "/healthz",
        "DB_HOSTNAME": HOST,
        "DB_PORT": str(db_port),
        "DB_NAME": db_name,
        "DB_IAM_USER": db_user,
        "DB_AUTH_MODE": "password",
        "DB_PASSWORD": db_password,
        "REDCAP_REGION": "us-east-1",
        "REDCAP_BASE_URL": "https://redcap.example.org/",
        "REDCAP_FROM_EMAIL": "redcap@example.org",
        "REDCAP_ADMIN_EMAIL": "first.admin@example.org",
        "S3_BUCKET": "redcap-files-123456789012",
        "SES_SMTP_HOST": HOST,
        "SES_SMTP_PORT": str(smtp_port or 587),
        "SES_CONFIGURATION_SET": "redcap-events",
        "REQUEST_TIMEOUT_SECONDS": "300",
        "MAX_UPLOAD_SIZE_MB": "64",
        "TIMEZONE": "UTC",
        "DB_SALT": "s4lt" + secrets.token_hex(16),
        "S3_USER_SECRET": json.dumps(
            {"UserName": "redcap-s3", "AccessKeyId": "AKIAFIRSTKEY0000", "SecretAccessKey": "first-" + "secret-key"}
        ),
        "SES_USER_SECRET": json.dumps(ses),
        "REDCAP_ADMIN_SECRET": json.dumps({"username": "site_admin", "password": admin_password}),
    }


@dataclass
class MariaDB:
    pki: Pki
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"redcap-test-db-{uuid.uuid4().hex[:8]}")

    def start(self, timeout: float = 60) -> MariaDB:
        podman(
            "run", "-d", "--rm", "--network", "host", "--name", self.name,
            "-e", f"MARIADB_PORT={self.port}", "-v", f"{self.pki.directory}:/certs:ro", MARIADB_IMAGE,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if podman("exec", "-i", self.name, "mariadb", "--socket=/tmp/mariadb.sock", "-e", "SELECT 1", check=False):
                return self
            time.sleep(0.3)
        raise RuntimeError(f"MariaDB did not start: {podman('logs', self.name, check=False)[-2000:]}")

    def sql(self, statements: str, database: str | None = None) -> list[list[str]]:
        """Runs SQL through the socket as the admin; statements arrive on stdin, not argv."""
        args = ["exec", "-i", self.name, "mariadb", "--socket=/tmp/mariadb.sock", "-N", "-B"]
        if database:
            args.append(database)
        out = podman(*args, input_text=statements)
        return [line.split("\t") for line in out.splitlines()]

    def create_schema_and_user(self, db_name: str, user: str, password: str) -> None:
        """The same statements as the stack's database custom resource, password-identified."""
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        stmts = [
            schema_statement(db_name),
            *app_user_statements(db_name, user, authentication=f"IDENTIFIED BY '{quoted}'"),
        ]
        self.sql(";\n".join(stmts) + ";\n")

    def stop(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


@dataclass
class RedcapContainer:
    image: str
    env: dict[str, str]
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    name: str = field(default_factory=lambda: f"redcap-test-{uuid.uuid4().hex[:8]}")

    @property
    def port(self) -> int:
        return int(self.env["LISTEN_PORT"])

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> RedcapContainer:
        env_file = self.workdir / f"{self.name}.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in self.env.items()))
        podman(
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            self.name,
            "--env-file",
            str(env_file),
            *self.extra_args,
            self.image,
        )
        return self

    def get(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> tuple[int, str, dict[str, str]]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace"), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace"), dict(err.headers)

    def wait_for(self, path: str, want: int, timeout: float = 60, need: str | None = None) -> float:
        """Seconds until ``path`` answers ``want`` (and contains ``need``); raises with the logs on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with contextlib.suppress(OSError):
                status, body, _ = self.get(path, timeout=2)
                if status == want and (need is None or need in body):
                    return time.monotonic() - start
            if not self.running():
                break
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {want}; logs:\n{self.logs()[-4000:]}")

    def health(self) -> dict[str, object]:
        status, body, _ = self.get(self.env["HEALTH_CHECK_PATH"])
        assert status == 200, (status, body)
        return dict(json.loads(body))

    def running(self) -> bool:
        out = podman("inspect", "-f", "{{.State.Running}}", self.name, check=False).strip()
        return out == "true"

    def wait_exit(self, timeout: float = 60) -> int:
        podman("wait", self.name, timeout=timeout)
        return int(podman("inspect", "-f", "{{.State.ExitCode}}", self.name).strip())

    def logs(self) -> str:
        return _logs(self.name)

    def exec(self, *cmd: str, user: str | None = None, input_text: str | None = None) -> str:
        args = ["exec", "-i"]
        if user:
            args += ["-u", user]
        return podman(*args, self.name, *cmd, input_text=input_text)

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


def _logs(name: str) -> str:
    done = subprocess.run(["podman", "logs", name], capture_output=True, text=True, env=podman_env(), check=False)
    return done.stdout + done.stderr


@contextlib.contextmanager
def running(container: RedcapContainer) -> Iterator[RedcapContainer]:
    container.start()
    try:
        yield container
    finally:
        container.remove()
