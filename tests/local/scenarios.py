"""What ``make local`` does: start the emulators, create the stack's resources, run each Lambda.

Each area's scenario first checks that its pieces exist (the function, its
events, its emulator); a missing piece is reported as a FAILED step that says
exactly what is missing, never skipped silently.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.env import REGION, LocalMotoServer, patched_environ, sandbox_environ
from local.runner import Run
from local.stack import Stack

# Parameters the local stack is rendered with: a managed Route 53 zone, so the
# custom-domain function has records to write, and a domain identity for SES.
DOMAIN = "redcap.example.org"
STACK_PARAMS: dict[str, Any] = {
    "DomainName": DOMAIN,
    "DnsMode": "CreateZone",
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:local",
}


@dataclass
class Local:
    """Everything the scenarios share: emulators, the rendered stack, the base environment."""

    stack: Stack
    run: Run
    moto_url: str
    env: dict[str, str]
    broken: frozenset[str] = frozenset()
    services: dict[str, Any] = field(default_factory=dict)
    exit_stack: ExitStack = field(default_factory=ExitStack)

    @classmethod
    def start(
        cls, exit_stack: ExitStack, run: Run, broken: list[str], compute: str = "AppRunner", dns: str = "CreateZone"
    ) -> Local | None:
        holder: dict[str, Any] = {}

        def render() -> str:
            holder["stack"] = Stack(**{**STACK_PARAMS, "DnsMode": dns}, ComputeType=compute)
            return f"{len(holder['stack'].resources)} resources for {DOMAIN} (DnsMode={dns}, ComputeType={compute})"

        if not run.step("template.yaml", "render", render):
            return None

        def moto() -> str:
            server = LocalMotoServer(broken)
            server.start()
            exit_stack.callback(server.stop)
            holder["moto"] = server
            note = f" (broken on purpose: {', '.join(broken)})" if broken else ""
            return server.url + note

        if not run.step("local AWS", "start moto server", moto):
            return None
        env = sandbox_environ(holder["moto"].url)
        # The whole run sees only the emulators; each handler adds its own variables on top.
        exit_stack.enter_context(patched_environ(env, scrub=True))
        return cls(
            stack=holder["stack"],
            run=run,
            moto_url=holder["moto"].url,
            env=env,
            broken=frozenset(broken),
            exit_stack=exit_stack,
        )

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.session.Session().client(service, region_name=region)  # type: ignore[call-overload]

    def emulator(self, module: str) -> Any:
        """Import ``testkit.emulators.<module>``; ImportError propagates as the step's failure."""
        return importlib.import_module(f"testkit.emulators.{module}")

    def set_env(self, name: str, value: str) -> None:
        self.env[name] = value
        os.environ[name] = value


Scenario = Callable[[Local, Run], None]
