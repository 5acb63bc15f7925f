"""Model packages that load with ``torch.load(weights_only=True)``, and a checked loader.

asteroid's ``BaseModel.serialize`` stores ``torch.__version__`` as a ``TorchVersion`` object,
which ``torch.load`` refuses with ``weights_only=True`` (the default since torch 2.6, and what
``BaseModel.from_pretrained`` / ``asteroid-infer`` use). :class:`PlainSerializable` stores
plain Python types only, and :func:`load_model` reports a mismatching package clearly;
:func:`install_missing_file_check` makes asteroid's own loader report a missing package file.
"""
import functools
import os
import pickle
from pathlib import Path
from typing import Any, Dict, Optional, Type

import torch

_REQUIRED_KEYS = ("model_name", "state_dict", "model_args")

#: A name ending in one of these is a model file, never a model id of the Hugging Face hub.
MODEL_FILE_SUFFIXES = (".pth", ".pt", ".ckpt")


class PlainSerializable:
    """Mixin for ``asteroid.models.BaseModel`` subclasses: plain-type ``serialize`` and a
    ``from_pretrained`` that checks the package (see :func:`load_model`).

    Every subclass is recorded by class name, so :func:`load_model` finds it without
    ``asteroid.models.register_model``.
    """

    classes: Dict[str, type] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        PlainSerializable.classes[cls.__name__] = cls

    def serialize(self) -> Dict[str, Any]:
        """``{model_name, state_dict, model_args, infos}`` with plain Python types only.

        Returns:
            dict: loadable with ``torch.load(..., weights_only=True)``.
        """
        import asteroid
        import pytorch_lightning as pl

        return dict(
            model_name=self.__class__.__name__,
            state_dict=self.get_state_dict(),
            model_args=self.get_model_args(),
            infos=dict(
                software_versions=dict(
                    torch_version=str(torch.__version__),
                    pytorch_lightning_version=str(pl.__version__),
                    asteroid_version=str(asteroid.__version__),
                )
            ),
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, **overrides):
        """Load a package (path or ``serialize()`` dict) with the checks of :func:`load_model`.

        Args:
            pretrained_model_conf_or_path: path to a ``torch.save``-d package, or the dict.
            **overrides: model arguments overriding the stored ones.
        """
        return load_model(pretrained_model_conf_or_path, expected_class=cls, **overrides)


def load_model(path_or_conf, expected_class: Optional[Type] = None, **overrides):
    """Build a model from a package saved with ``torch.save(model.serialize(), path)``.

    Args:
        path_or_conf: path to the package, or the package dict itself.
        expected_class: if given, the package must hold this class (or a subclass).
        **overrides: model arguments overriding the stored ones.

    Returns:
        the model, in eval mode, on CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a model package, unknown or unexpected class, or model arguments /
            weights that do not match the class (e.g. a package from an older version).
            The message names the file and the mismatch.
    """
    source = path_or_conf if isinstance(path_or_conf, (str, os.PathLike)) else "<package dict>"
    conf = _read_package(path_or_conf) if source != "<package dict>" else path_or_conf
    missing = [key for key in _REQUIRED_KEYS if key not in conf]
    if missing:
        raise ValueError(f"{source}: not a model package, missing keys {missing}.")
    name = conf["model_name"]
    model_class = PlainSerializable.classes.get(name)
    if model_class is None:
        raise ValueError(
            f"{source}: holds a {name!r} model; this loader knows "
            f"{sorted(PlainSerializable.classes)}. Load it with the package that defines {name}."
        )
    if expected_class is not None and not issubclass(model_class, expected_class):
        raise ValueError(f"{source}: holds a {name!r} model, not a {expected_class.__name__}.")
    args = {**conf["model_args"], **overrides}
    try:
        model = model_class(**args)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{source}: its model_args do not fit {name} ({err}). The package was probably "
            "made by another version of asteroid_avspeech; retrain or convert it."
        ) from err
    try:
        model.load_state_dict(conf["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{source}: weights do not match {name}{args}: {err}") from err
    return model.eval()


def _read_package(path) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model package {path} does not exist.")
    advice = "Save packages with torch.save(model.serialize(), path)."
    try:  # a text or other non-torch file fails in torch's legacy reader with a KeyError
        package = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError) as err:
        raise ValueError(f"{path}: not a loadable model package ({err.__class__.__name__}: {err}). {advice}") from err
    if not isinstance(package, dict):
        raise ValueError(f"{path}: holds a {type(package).__name__}, not a model package (a dict). {advice}")
    return package


def install_missing_file_check() -> None:
    """Make ``asteroid.models.BaseModel.from_pretrained`` (so ``asteroid-infer``) report a missing model file.

    asteroid takes any string that is not a file for a model name to download (Zenodo, the Hugging Face
    hub): a mistyped ``exp/l2l/best_modle.pth`` ends in a traceback from huggingface_hub ("Repo id must be in
    the form 'repo_name' or 'namespace/repo_name'") or a failed download. A string that is not a file,
    not a URL and not one of asteroid's model names, and that names a model file
    (:data:`MODEL_FILE_SUFFIXES`) or cannot be a hub model id, now raises :class:`FileNotFoundError`
    naming it, for every asteroid model. Model names and URLs go to asteroid unchanged; asteroid's
    files are not modified. Idempotent.
    """
    from asteroid.models import base_models

    original = base_models.cached_download
    if getattr(original, "checks_missing_files", False):
        return

    @functools.wraps(original)
    def cached_download(filename_or_url):
        if isinstance(filename_or_url, str) and names_missing_file(filename_or_url):
            raise FileNotFoundError(f"Model package {filename_or_url} does not exist (not a file; asteroid would "
                                    "look it up as a model name to download). Check the path: ./run.sh writes "
                                    "exp/<tag>/best_model.pth.")
        return original(filename_or_url)

    cached_download.checks_missing_files = True
    base_models.cached_download = cached_download


def names_missing_file(name: str) -> bool:
    """True if ``name`` (as given to asteroid's ``from_pretrained``) can only mean a local file, and none
    exists: see :func:`install_missing_file_check`."""
    from asteroid.utils.hub_utils import MODELS_URLS_HASHTABLE
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if os.path.isfile(name) or name.startswith(("http://", "https://")) or name in MODELS_URLS_HASHTABLE:
        return False
    if Path(name).suffix.lower() in MODEL_FILE_SUFFIXES:
        return True
    try:
        validate_repo_id(name.split("@")[0])
    except HFValidationError:
        return True
    return False
