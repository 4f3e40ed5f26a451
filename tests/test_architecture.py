"""Dependencies point one way, and the pure cores know nothing of Django.

Layers, bottom first: ``core`` ← ``consortium`` ← ``ledger`` ← ``valuation`` ← ``incentives``
← ``demo`` (``config`` wires them all together and is above every app). A module may import
its own app and the apps below it, never one above. Incentives may use valuation (a revenue
pool rests on valuation runs), valuation never incentives. The pure cores import only the
standard library, their allowed numeric libraries and their own siblings.

Imports are read from the source (``ast``), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "consortium", "ledger", "valuation", "incentives", "demo", "config"]
# Pure cores: the files or packages, and the top-level packages (or other pure cores, by
# module name) they may import.
PURE_CORES = {
    "valuation/engine": {"numpy", "scipy", "shap"},
    "ledger/merkle.py": set(),
    "ledger/canonical.py": {"rfc8785"},
    "incentives/allocation.py": set(),
    "incentives/policy.py": {"incentives.allocation"},
    "valuation/demo_ai4i.py": {"numpy"},
    "valuation/demo_consortium.py": {"numpy", "valuation.demo_ai4i"},
}
FRAMEWORKS = {"django", "rest_framework", "drf_spectacular", "celery", "kombu"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name that ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module)
    return names


def _sources(relative: str) -> list[Path]:
    target = ROOT / relative
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


def layer_violations(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        own = path.relative_to(ROOT).parts[0]
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > LAYERS.index(own):
                found.append(f"{path.relative_to(ROOT)} imports {name} (layer {top} is above {own})")
    return found


def pure_core_violations(relative: str, allowed: set[str]) -> list[str]:
    found = []
    own_package = relative.removesuffix(".py").replace("/", ".")
    for path in _sources(relative):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if name == own_package or name.startswith(own_package + ".") or name in allowed:
                continue
            if top in FRAMEWORKS or top in LAYERS or (top not in sys.stdlib_module_names and top not in allowed):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("app", LAYERS[:-1])
def test_no_app_imports_an_app_above_it(app):
    assert layer_violations(_sources(app)) == []


@pytest.mark.parametrize("core", [c for c in PURE_CORES if (ROOT / c).exists()])
def test_pure_cores_import_no_framework_and_no_app(core):
    assert pure_core_violations(core, PURE_CORES[core]) == []


def test_pure_cores_load_without_django():
    """What the source check cannot see: nothing they import pulls Django in either."""
    modules = ["valuation.engine", "ledger.merkle", "ledger.canonical"]
    modules += [name for name in ("incentives.allocation", "incentives.policy")
                if (ROOT / name.replace(".", "/")).with_suffix(".py").exists()]
    code = (f"import sys; import {', '.join(modules)}; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "consortium").mkdir()
    offender = tmp_path / "consortium" / "services.py"
    offender.write_text("def f():\n    from valuation.services import training_run_create\n")
    lower = tmp_path / "consortium" / "models.py"
    lower.write_text("from core.errors import NotFound\nfrom . import services\n")
    assert layer_violations([offender, lower]) == [
        "consortium/services.py imports valuation.services (layer valuation is above consortium)"
    ]


def test_the_pure_core_check_catches_django_and_app_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "merkle.py").write_text(
        "import hashlib\nfrom django.conf import settings\nfrom ledger import models\nimport requests\n"
    )
    assert sorted(pure_core_violations("ledger/merkle.py", set())) == [
        "ledger/merkle.py imports django.conf", "ledger/merkle.py imports ledger", "ledger/merkle.py imports requests",
    ]


def test_a_pure_core_may_import_the_other_pure_cores_it_names_and_nothing_else_of_its_app(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "incentives").mkdir()
    (tmp_path / "incentives" / "policy.py").write_text(
        "from incentives.allocation import allocate\nfrom incentives import models\n"
    )
    assert pure_core_violations("incentives/policy.py", {"incentives.allocation"}) == [
        "incentives/policy.py imports incentives",
    ]
