"""Modules that importing Beam loads but a typical run never uses, run on first use.

``import apache_beam`` imports every one of its connectors' libraries, whether a
pipeline uses them or not. While ``run`` imports Beam, the modules named in
``LAZY_MODULES`` are found and created as usual, but their code runs only when
something first reads one of their attributes: a run that never touches them never
pays for them, and one that does (a Parquet object, say) gets the same module,
loaded at that moment. A module that is missing still fails at its import, as
before; an error inside its code is raised at its first use.

Only modules whose importers in Beam merely bind them (``import x``) stay lazy: a
``from x import y`` reads ``x.y`` at once and so loads ``x`` there and then (no
gain, no harm); so does one that Beam reads while it builds the pipeline (proto-plus:
its coder registry asks every type whether it is a proto-plus message).
tests/test_startup.py checks that each of these stays lazy in a run.

Why not ``importlib.util.LazyLoader``: in Python 3.11 its module turns into a plain
one *before* its code runs, so a second thread that touches it meanwhile sees it
half-run (an AttributeError in a worker). Here a module stays lazy until its code
has run, and other threads wait for that.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.machinery import ModuleSpec, SourceFileLoader, SourcelessFileLoader

# Own import time in a run, here (python -X importtime), with what they bring in.
LAZY_MODULES = (
    "httplib2",  # Beam's HTTP downloads (artifact staging): with pyparsing, ~55 ms
    "requests",  # Beam's GCE metadata lookups (Dataflow): ~25 ms
    "regex",  # Beam's BigQuery table-name patterns: ~15 ms
    "grpc.aio",  # gRPC's asyncio API (Beam's runners use the threaded one): ~14 ms
    "pyarrow.parquet",  # Parquet objects and the Parquet archive output: ~13 ms
)


@contextmanager
def lazy_modules(names: tuple[str, ...] = LAZY_MODULES) -> Iterator[None]:
    """Within this block, the first import of any of ``names`` makes a lazy module."""
    finder = _LazyFinder(frozenset(names))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def is_lazy(module: types.ModuleType) -> bool:
    """True while the module's code has not run yet."""
    return type(module) is _LazyModule


class _LazyFinder:
    """A meta path finder: for the names it was given, the spec the other finders
    return, with its loader wrapped. Only pure Python modules: an extension module's
    code runs when it is created, which cannot wait."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        if name not in self.names:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is None:
                continue
            if isinstance(spec.loader, (SourceFileLoader, SourcelessFileLoader)):
                spec.loader = _LazyLoader(spec.loader)
            return spec
        return None


class _LazyLoader:
    """Creates the module as its own loader would, and leaves it lazy instead of
    running its code."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        spec = module.__spec__
        # From here on the module shows its own loader (reload, inspect, tracebacks).
        spec.loader = module.__loader__ = self.loader
        spec.loader_state = _Pending(self.loader)
        module.__class__ = _LazyModule


class _Pending:
    def __init__(self, loader) -> None:
        self.loader = loader
        self.lock = threading.RLock()
        self.running = False  # the module's code is running, in the thread holding lock


class _LazyModule(types.ModuleType):
    """A module whose code runs at the first read of one of its attributes."""

    def __getattribute__(self, attr: str):
        spec = types.ModuleType.__getattribute__(self, "__spec__")
        # Every later `import x` reads x.__spec__ (is x still being imported?): that
        # alone need not run x, its spec is known before.
        if attr != "__spec__":
            _run(self, spec)
        return types.ModuleType.__getattribute__(self, attr)

    def __delattr__(self, attr: str) -> None:
        _run(self, types.ModuleType.__getattribute__(self, "__spec__"))
        types.ModuleType.__delattr__(self, attr)


def _run(module: types.ModuleType, spec: ModuleSpec) -> None:
    pending = spec.loader_state
    if not isinstance(pending, _Pending):
        return  # another thread ran it while this one was on its way here
    with pending.lock:
        if spec.loader_state is not pending or pending.running:
            # Done meanwhile, or this very thread is running its code (the module
            # reads its own attributes): go on with the module as it is so far, as
            # a circular import would.
            return
        pending.running = True
        try:
            pending.loader.exec_module(module)
        finally:
            # On an error the module stays lazy: its next use runs it again and
            # raises again, rather than leaving a half-run module behind.
            pending.running = False
        spec.loader_state = None
        module.__class__ = types.ModuleType
