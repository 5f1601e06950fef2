"""The template, rendered for the local run, with the physical ids created in the emulators.

Function environments are read from ``template.yaml`` (Globals plus the
function's own variables) and their ``Ref``/``GetAtt``/``Sub`` are resolved
against what this run created, so a handler runs with the same settings it
would get from CloudFormation. A reference to something this run did not
create is an error naming it, never a silent default.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from local.env import ACCOUNT_ID, REGION
from testkit import load_event
from testkit.template import Rendered

STACK_NAME = "redcap-local"
_SUB_RE = re.compile(r"\$\{([^}!]+)\}")


class Unresolved(LookupError):
    pass


class Stack:
    def __init__(self, **params: Any) -> None:
        self.rendered = Rendered(**params)
        self.physical: dict[str, str] = {}
        self.pseudo = {
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
        }

    # --- what the template declares ---------------------------------------
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.rendered.resources

    def has(self, logical_id: str) -> bool:
        return logical_id in self.rendered.resources

    def cfn_event(self, function: str, file: str, logical_id: str) -> dict[str, Any]:
        """``events/<function>/<file>`` carrying the template's properties of ``logical_id``, resolved.

        The file's ``OldResourceProperties`` are fixture values, not this stack's: they are dropped.
        The caller sets what differs per call (request type, physical id, response URL).
        """
        ev = copy.deepcopy(load_event(function, file))
        ev["ResourceProperties"] = {
            k: [self.value(i, f"{logical_id}.{k}") for i in v]
            if isinstance(v, list)
            else self.value(v, f"{logical_id}.{k}")
            for k, v in self.props(logical_id).items()
        }
        ev["ServiceToken"] = ev["ResourceProperties"]["ServiceToken"]
        ev.pop("OldResourceProperties", None)
        return ev

    def props(self, logical_id: str) -> dict[str, Any]:
        if not self.has(logical_id):
            raise Unresolved(f"template.yaml declares no resource {logical_id} (for the local parameters)")
        return self.rendered.props(logical_id)

    def function_dir(self, logical_id: str) -> str:
        """``CodeUri: functions/<name>/`` -> ``<name>``."""
        code_uri = str(self.props(logical_id).get("CodeUri", ""))
        match = re.fullmatch(r"functions/([A-Za-z0-9_]+)/?", code_uri)
        if not match:
            raise Unresolved(f"{logical_id}: CodeUri {code_uri!r} is not functions/<name>/")
        return match.group(1)

    def function_env(self, logical_id: str) -> dict[str, str]:
        globals_ = self.rendered.resolve(self.rendered.template.get("Globals", {}))
        variables: dict[str, Any] = dict(globals_.get("Function", {}).get("Environment", {}).get("Variables", {}))
        variables.update(self.props(logical_id).get("Environment", {}).get("Variables", {}))
        return {name: self.value(v, f"{logical_id}.{name}") for name, v in variables.items()}

    def functions_using(self, directory: str) -> list[str]:
        """Logical ids of the functions whose code is ``functions/<directory>/``."""
        found = []
        for name, res in self.resources.items():
            if res["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                code = str(res.get("Properties", {}).get("CodeUri", "")).rstrip("/")
                if code == f"functions/{directory}":
                    found.append(name)
        return found

    # --- intrinsic functions against local physical ids ------------------
    def value(self, node: Any, where: str) -> str:
        if isinstance(node, str | int | float | bool):
            return str(node).lower() if isinstance(node, bool) else str(node)
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(str(arg), where)
            if key == "Fn::GetAtt":
                dotted = arg if isinstance(arg, str) else ".".join(arg)
                return self._ref(dotted, where)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                local = {k: self.value(v, where) for k, v in extra.items()}
                # A variable may resolve to "" (an empty !If branch): look it up by name, not truthiness.
                return _SUB_RE.sub(
                    lambda m: local[m.group(1)] if m.group(1) in local else self._ref(m.group(1), where), text
                )
            if key == "Fn::Join":
                sep, items = arg
                if not isinstance(items, list):  # a list-valued attribute (one value locally)
                    return self.value(items, where)
                return str(sep).join(self.value(v, where) for v in items)
            if key == "Fn::Select" and isinstance(arg[1], dict) and "Fn::Split" in arg[1]:
                sep, text = arg[1]["Fn::Split"]
                return self.value(text, where).split(sep)[int(arg[0])]
            if key == "Fn::Select":
                index, items = arg
                values = self.value(items, where).split(",") if not isinstance(items, list) else items
                return self.value(values[int(index)], where)
        raise Unresolved(f"{where}: cannot resolve {node!r} locally")

    def _ref(self, name: str, where: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.rendered.params and self.rendered.params[name] is not None:
            return str(self.rendered.params[name])
        if name in self.physical:
            return self.physical[name]
        raise Unresolved(f"{where}: {name} was not created by the local run")
