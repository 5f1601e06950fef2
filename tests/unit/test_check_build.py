from __future__ import annotations

from pathlib import Path

from local.check_build import LAYER_PACKAGES, problems

from testkit import ROOT
from testkit.template import load


def _fake_build(
    root: Path, *, skip_function: str | None = None, skip_pyc: str | None = None, context: Path = ROOT / "containers"
) -> None:
    # As sam build writes it: the unbuilt context layer keeps a path to its folder.
    (root / "template.yaml").write_text(
        f"Resources:\n  RedcapBuildContextLayer:\n    Properties:\n      ContentUri: {context}\n"
    )
    for name, res in load()["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function" and name != skip_function:
            (root / name).mkdir(parents=True)
            (root / name / "app.py").write_text("")
    for package in LAYER_PACKAGES:
        pkg = root / "SharedLayer" / "python" / package
        (pkg / "__pycache__").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        if package != skip_pyc:
            (pkg / "__pycache__" / "__init__.cpython-313.pyc").write_bytes(b"")


def test_complete_build_passes(tmp_path: Path):
    _fake_build(tmp_path)
    assert problems(tmp_path) == []


def test_missing_build_is_reported(tmp_path: Path):
    assert problems(tmp_path) == [f"{tmp_path}/template.yaml is missing: run `make build`"]


def test_missing_function_and_bytecode_are_reported(tmp_path: Path):
    _fake_build(tmp_path, skip_function="CronCallerFunction", skip_pyc="crhelper")
    found = problems(tmp_path)
    assert any(p.startswith("function CronCallerFunction:") for p in found)
    assert "layer: crhelper has no Python 3.13 bytecode" in found
    assert len(found) == 2


def test_context_layer_without_the_build_script_is_reported(tmp_path: Path):
    _fake_build(tmp_path, context=tmp_path / "nowhere")
    (found,) = problems(tmp_path)
    assert found.startswith("layer RedcapBuildContextLayer: ContentUri")
    assert "has no redcap/build.sh" in found
