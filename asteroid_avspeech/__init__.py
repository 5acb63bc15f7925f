"""asteroid-avspeech: Looking to Listen at a Cocktail Party (Ephrat et al. 2018) as an asteroid plugin.

Data flow: clips (mp4, AVSpeech layout) -> ``data`` (audio, mixtures, dataset) and ``video``
(decoding, face tracking, crops) -> ``models`` (``VisualEncoder``, ``LookingToListen``) trained by
``system.AVSystem`` -> evaluation and export.

Importing the package registers its models with ``asteroid.models`` (idempotently), so that
``asteroid.models.BaseModel.from_pretrained`` and ``asteroid-infer`` find them by name. The
``asteroid_avspeech.pth`` hook installed with the package does this import automatically as soon
as any process imports ``asteroid.models``. It also makes asteroid's ``from_pretrained`` report a
model file that does not exist as such (``models.serialization.install_missing_file_check``).
"""
from .models import LookingToListen, VisualEncoder
from .models.serialization import install_missing_file_check
from .registry import register_models

__version__ = "0.1.0"
__all__ = ["LookingToListen", "VisualEncoder", "register_models", "separate_video"]

register_models([LookingToListen, VisualEncoder])
install_missing_file_check()


def __getattr__(name: str):
    # The video pipeline (MTCNN, PyAV, OpenCV) loads on first use, not with every asteroid import.
    if name == "separate_video":
        from .separate import separate_video

        return separate_video
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
