"""Idempotent registration of our models with ``asteroid.models``.

``asteroid.models.register_model`` raises on a second registration of the same name, which
would make a second import, ``importlib.reload`` or the autoload hook fail. Registering the
same class (same module and qualified name, e.g. after a reload) again is a no-op here; a
*different* class under a taken name is an error.
"""
from typing import Iterable, Type

from asteroid import models as asteroid_models


def _same_class(a: type, b: type) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def register_models(classes: Iterable[Type[asteroid_models.BaseModel]]) -> None:
    """Register each class with asteroid so that ``BaseModel.from_pretrained`` finds it by name.

    Raises:
        ValueError: if another class already holds one of the names.
    """
    for cls in classes:
        existing = getattr(asteroid_models, cls.__name__, None)
        if existing is None:
            asteroid_models.register_model(cls)
        elif existing is not cls:
            if not (isinstance(existing, type) and _same_class(existing, cls)):
                raise ValueError(
                    f"asteroid.models already has a {cls.__name__!r} ({existing!r}) that is not "
                    f"{cls.__module__}.{cls.__qualname__}; rename one of the two models."
                )
            setattr(asteroid_models, cls.__name__, cls)  # reloaded module: point to the new class
