"""Check what ``sam build`` produced: every function's package and the shared layer.

Run by ``make test`` after ``make build`` (CI proves the build on every change):
each ``AWS::Serverless::Function`` in ``template.yaml`` must have its handler
module in ``.aws-sam/build/<LogicalId>/``, and the layer must hold the shared
package, its pinned dependencies and Python 3.13 bytecode for all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from testkit import ROOT
from testkit.template import load

BUILD = ROOT / ".aws-sam" / "build"
LAYER_PACKAGES = ("redcap_ctl", "aws_lambda_powertools", "crhelper")


def load_built(path: Path) -> dict[str, Any]:
    """The resources of the built template, read with cfn-lint's loader (as testkit.template does)."""
    from cfnlint.decode import decode

    data, _matches = decode(str(path))
    resources: dict[str, Any] = dict(data.get("Resources", {})) if isinstance(data, dict) else {}
    return resources


def problems(build: Path = BUILD) -> list[str]:
    found: list[str] = []
    if not (build / "template.yaml").is_file():
        return [f"{build}/template.yaml is missing: run `make build`"]
    resources = load()["Resources"]
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        module = str(res["Properties"].get("Handler", "app.handler")).rsplit(".", 1)[0]
        if not (build / name / f"{module}.py").is_file():
            found.append(f"function {name}: {module}.py not in {build / name}")
    # Layers without a BuildMethod (the REDCap image build context) are not built: the built
    # template must still point at their folder, which sam deploy zips and uploads as it is.
    built = load_built(build / "template.yaml")
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::LayerVersion" or "BuildMethod" in res.get("Metadata", {}):
            continue
        uri = str(built.get(name, {}).get("Properties", {}).get("ContentUri", ""))
        folder = (build / uri).resolve()
        if not uri or not (folder / "redcap" / "build.sh").is_file():
            found.append(f"layer {name}: ContentUri {uri!r} in the built template has no redcap/build.sh")
    layer = build / "SharedLayer" / "python"
    for package in LAYER_PACKAGES:
        init = layer / package / "__init__.py"
        if not init.is_file():
            found.append(f"layer: {package} missing")
            continue
        if not list((layer / package / "__pycache__").glob("__init__.cpython-313.pyc")):
            found.append(f"layer: {package} has no Python 3.13 bytecode")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(f"check-build: {line}", file=sys.stderr)
    if found:
        return 1
    print("check-build: every function package and the shared layer (with 3.13 bytecode) are built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
