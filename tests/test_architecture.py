"""The architecture as tests: the import rules hold, and docs/architecture.md names every module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("matcher", "service")


def test_imports_keep_the_layer_rules():
    """import-linter's contracts in pyproject.toml ([tool.importlinter], which `make lint` checks too):
    each matcher subpackage imports only those below it, matcher never imports service/Flask/werkzeug,
    no import cycles between the modules of one package. Here so that `make test` alone catches a break."""
    lint_imports = Path(sys.executable).with_name("lint-imports")     # the venv's, beside its python
    done = subprocess.run([str(lint_imports), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _modules() -> list[str]:
    """Every module of the packages as a path (``matcher/text/lexical.py``), without ``__init__.py``/
    ``__main__.py`` and without Alembic's migration scripts (the doc names their folder)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if path.name not in {"__init__.py", "__main__.py"} and "migrations" not in relative.parts:
                found.append(relative.as_posix())
    return found


def _named(doc: str, module: str) -> bool:
    """``matcher/text/lexical.py`` is named as itself or as ``text/lexical.py``; a module directly in a
    package (``matcher/errors.py``, ``service/auth.py``) only with its package, as ``errors.py`` alone
    would not say which."""
    forms = [module]
    package, *inside = module.split("/")
    if len(inside) > 1:
        forms.append("/".join(inside))
    return any(re.search(rf"(?<![\w/.-]){re.escape(form)}(?!\w)", doc) for form in forms)


def test_architecture_doc_names_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [module for module in _modules() if not _named(doc, module)]
    assert not missing, f"docs/architecture.md does not name {len(missing)} modules: {', '.join(missing)}"
