"""Models: the Looking-to-Listen separator and its visual front-end (asteroid BaseModels)."""
from .looking_to_listen import PRESETS, LookingToListen
from .serialization import load_model
from .visual_encoder import VisualEncoder

__all__ = ["LookingToListen", "VisualEncoder", "PRESETS", "load_model"]
