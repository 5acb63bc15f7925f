"""Make asteroid find our models in any process, at no cost until asteroid is used.

asteroid has no plugin discovery: ``asteroid-infer`` and ``BaseModel.from_pretrained`` run
``asteroid.models.get(model_name)`` in a fresh process where only asteroid's own models are
registered. This module is imported at interpreter start by the ``asteroid_avspeech.pth`` file
that installs with the package. It only puts an import hook in place (no torch, no asteroid);
the hook imports ``asteroid_avspeech`` (which registers its models) right after the package
``asteroid`` has finished executing (it imports ``asteroid.models`` itself, and every
``import asteroid.<anything>`` runs it first), and then removes itself.
"""
import importlib.abc
import importlib.machinery
import sys
import warnings

_TARGET = "asteroid"


class _RegisterAfterLoad(importlib.abc.Loader):
    """Wrap the loader of ``asteroid``: execute it, then register our models."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        try:
            import asteroid_avspeech  # noqa: F401  (registration happens at import)
        except Exception as err:  # a broken plugin must never break asteroid itself
            warnings.warn(f"asteroid_avspeech models not registered with asteroid: {err!r}")


class _AsteroidModelsFinder(importlib.abc.MetaPathFinder):
    """Finds ``asteroid`` with the regular path finder and wraps its loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterLoad(spec.loader)
        return spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` unless asteroid is already imported."""
    if _TARGET in sys.modules or any(isinstance(f, _AsteroidModelsFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _AsteroidModelsFinder())


install()
