"""Load ``template.yaml`` and resolve what it produces for given parameter values.

The loader is cfn-lint's own (it understands ``!Ref``, ``!Sub`` and the other
short-form tags). ``Rendered`` evaluates the template's Conditions and
``Fn::If`` for a set of parameter values, so tests can assert, for example,
that prod enables backtrack while dev does not.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from cfnlint.decode import decode

from testkit import TEMPLATE

NO_VALUE = object()
# The two statements every function's execution role starts with (its own log group, X-Ray traces).
BASELINE_SIDS = frozenset({"OwnLogGroupOnly", "ActiveTracing"})


@functools.cache
def _raw() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert template is not None
    plain: dict[str, Any] = _plain(template)
    return plain


def _plain(node: Any) -> Any:
    # cfn-lint returns dict_node/str_node subclasses; tests want plain types.
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load() -> dict[str, Any]:
    """A fresh deep copy of the template as plain Python data."""
    return copy.deepcopy(_raw())


def defaults() -> dict[str, Any]:
    params = _raw().get("Parameters", {})
    return {name: spec.get("Default") for name, spec in params.items()}


class Rendered:
    """The template as CloudFormation would see it for ``params`` (defaults filled in)."""

    def __init__(self, **params: Any) -> None:
        self.template = load()
        unknown = set(params) - set(self.template.get("Parameters", {}))
        assert not unknown, f"unknown parameters: {unknown}"
        self.params = {**defaults(), **params}
        self._conditions: dict[str, bool] = {}

    # --- conditions -------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self._eval(self.template["Conditions"][name]))
        return self._conditions[name]

    def _eval(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::Equals":
                left, right = (self._eval(v) for v in value)
                return str(left) == str(right)
            if key == "Fn::And":
                return all(self._eval(v) for v in value)
            if key == "Fn::Or":
                return any(self._eval(v) for v in value)
            if key == "Fn::Not":
                return not self._eval(value[0])
            if key == "Condition":
                return self.condition(value)
            if key == "Ref":
                if value in self.params:
                    return self.params[value]
                return {"Ref": value}
            if key == "Fn::Join":
                sep, items = value
                parts = [self._eval(v) for v in items]
                if all(isinstance(p, str) for p in parts):
                    return sep.join(parts)
                return {"Fn::Join": [sep, parts]}
            if key == "Fn::Select":
                index, items = value
                items = self._eval(items)
                if isinstance(items, list):
                    return items[int(self._eval(index))]
                return node
        if isinstance(node, list):
            return [self._eval(v) for v in node]
        return node

    # --- resources --------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        """Resolve Fn::If / AWS::NoValue (and parameter Refs) everywhere in ``node``."""
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, value),) = node.items()
                if key == "Fn::If":
                    cond, yes, no = value
                    return self.resolve(yes if self.condition(cond) else no)
                if key == "Ref" and value == "AWS::NoValue":
                    return NO_VALUE
                if key == "Ref" and value in self.params:
                    return self.params[value]
            out = {}
            for k, v in node.items():
                r = self.resolve(v)
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(node, list):
            return [r for r in (self.resolve(v) for v in node) if r is not NO_VALUE]
        return node

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources that exist under these parameters, with conditional values resolved."""
        out = {}
        for name, res in self.template["Resources"].items():
            cond = res.get("Condition")
            if cond is None or self.condition(cond):
                out[name] = self.resolve(res)
        return out

    def resource(self, name: str) -> dict[str, Any]:
        resources = self.resources
        assert name in resources, f"{name} does not exist with {self.params}"
        return resources[name]

    def props(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resource(name).get("Properties", {})
        return props

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["Type"] == resource_type}

    def execution_role(self, function: str) -> dict[str, Any]:
        """The ``AWS::IAM::Role`` a function runs as (every function names its own, ``Role: !GetAtt X.Arn``)."""
        role = self.props(function)["Role"]
        assert isinstance(role, dict), f"{function}: Role must be !GetAtt <its role>.Arn"
        ((_, target),) = role.items()
        name = target[0] if isinstance(target, list) else str(target).split(".")[0]
        resource = self.resource(name)
        assert resource["Type"] == "AWS::IAM::Role", name
        return resource

    def function_statements(self, function: str, *, baseline: bool = False) -> list[dict[str, Any]]:
        """The statements of a function's execution role.

        Every role starts with the same two (``BASELINE_SIDS``: its own log group, X-Ray); they are left
        out unless ``baseline``, so area tests see exactly what their function was given on top.
        """
        props = self.execution_role(function)["Properties"]
        assert "ManagedPolicyArns" not in props, f"{function}: managed policies would grant what tests cannot see"
        statements = [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]
        return statements if baseline else [s for s in statements if s.get("Sid") not in BASELINE_SIDS]

    @property
    def outputs(self) -> dict[str, Any]:
        out = {}
        for name, o in self.template.get("Outputs", {}).items():
            cond = o.get("Condition")
            if cond is None or self.condition(cond):
                out[name] = self.resolve(o)
        return out
