"""A production install carries no test machinery.

moto (with its Flask server) is the `demo` extra: the embedded AWS of
`aws-collector demo` and of the tests. What a production install runs (`run`,
`validate`, `setup`, `iam-policy`) must import without it, and the embedded AWS
imports moto only when it starts. The fault-injecting proxy is test code
(tests/faults.py), and the package never imports the tests.
"""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

PACKAGE = Path(__file__).resolve().parent.parent / "awscollector"
TEST_ONLY = {"moto", "flask", "pytest", "ruff"}

# What cli.py's commands other than `demo` import; whatever they import in turn
# comes along. None in sys.modules makes any import of these names fail.
COMMAND_MODULES = ("awscollector.cli", "awscollector.config", "awscollector.io.stop",
                   "awscollector.pipelines.collector", "awscollector.pipelines.s3_services",
                   "awscollector.provision", "awscollector.iampolicy")
EMBEDDED_MODULES = ("awscollector.embedded", "awscollector.embedded.aws",
                    "awscollector.embedded.apis", "awscollector.embedded.front",
                    "awscollector.embedded.certs", "awscollector.embedded.config",
                    "awscollector.embedded.relay", "awscollector.embedded.server",
                    "awscollector.embedded.recorder", "awscollector.embedded.http_endpoint",
                    "awscollector.embedded.seed", "awscollector.embedded.seed_apis")


def _import_with_blocked(modules: tuple[str, ...], blocked: tuple[str, ...]) -> None:
    code = (f"import importlib, sys\n"
            f"for name in {blocked!r}:\n"
            f"    sys.modules[name] = None\n"
            f"for name in {modules!r}:\n"
            f"    importlib.import_module(name)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_moto_and_the_test_tools_are_extras_only():
    requires = [Requirement(r) for r in importlib.metadata.requires("awscollector") or []]
    base = {r.name.lower() for r in requires if r.marker is None}
    assert base and not base & TEST_ONLY, base
    extras: dict[str, set[str]] = {}
    for r in requires:
        if r.marker is not None:
            for extra in ("demo", "test"):
                if r.marker.evaluate({"extra": extra}):
                    extras.setdefault(extra, set()).add(r.name.lower())
    assert "moto" in extras["demo"] and "moto" in extras["test"]
    moto = next(r for r in requires if r.name == "moto" and r.marker.evaluate({"extra": "demo"}))
    assert "server" in moto.extras  # the Flask server the embedded AWS starts


def test_the_commands_import_without_moto_flask_or_the_embedded_services():
    _import_with_blocked(COMMAND_MODULES, ("moto", "flask", "awscollector.embedded"))


def test_the_embedded_package_imports_moto_only_when_started():
    _import_with_blocked(EMBEDDED_MODULES, ("moto", "flask"))


def test_the_package_never_imports_the_tests_and_holds_no_fault_proxy():
    assert not (PACKAGE / "embedded" / "faults.py").exists()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path}:{node.lineno}" for name in names
                          if name == "tests" or name.startswith("tests.")]
    assert offenders == []
