"""The image build's extension check (``containers/redcap/extensions.py``) and stand-in modules.

The tests and the CodeBuild emulator load the very file ``build.sh`` runs, so the rules live in one
place. The stand-in module is our own tiny ``config.json``; no REDCap or module code.
"""

from __future__ import annotations

import importlib.util
import io
import json
import stat
import sys
import zipfile
from pathlib import Path
from types import ModuleType

EXTENSIONS_PY = Path(__file__).resolve().parents[2] / "containers" / "redcap" / "extensions.py"


def load() -> ModuleType:
    """``containers/redcap/extensions.py`` as a module (it is a script in the build context, not a package)."""
    name = "redcap_image_extensions"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXTENSIONS_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class is created.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def module_zip(folder: str = "demo_module_v1.0.0", body: str = "one", extra: dict[str, str] | None = None) -> bytes:
    """A module zip: ``folder/config.json`` (a name and a description) and a PHP file, plus ``extra`` entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{folder}/config.json", json.dumps({"name": folder, "description": body}))
        zf.writestr(f"{folder}/DemoModule.php", f"<?php // stand-in module {body}\n")
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
    return buffer.getvalue()


def symlink_zip(folder: str = "demo_module_v1.0.0") -> bytes:
    """A module zip that also holds a symbolic link (Unix mode in ``external_attr``, as zip -y writes it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{folder}/config.json", "{}")
        link = zipfile.ZipInfo(f"{folder}/escape")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buffer.getvalue()


LANGUAGE_INI = 'welcome = "Bienvenue"\n'
