"""Optional FaceNet (InceptionResnetV1) face embeddings from a local weights file.

facenet-pytorch downloads its pretrained weights at run time, which fails offline, so the
weights are only ever read from a path the user gives (e.g. the VGGFace2 checkpoint
``20180402-114759-vggface2.pt``). Without it, embeddings are skipped with one log line; the
lip-crop path needs no pretrained weights.
"""
import logging
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from facenet_pytorch import InceptionResnetV1

from .crops import standardize_faces

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 512


class FaceEmbedder:
    """InceptionResnetV1 with weights loaded from ``weights_path`` (a state_dict file).

    The classifier head of a checkpoint (``logits.*``) is ignored; any other mismatch raises.

    Args:
        weights_path: torch state_dict of InceptionResnetV1.
        device: torch device.
        batch_size: faces per forward pass.
    """

    def __init__(self, weights_path: Path, device: Union[str, torch.device] = "cpu", batch_size: int = 32):
        state = torch.load(Path(weights_path), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        self.model = InceptionResnetV1(pretrained=None, classify=False).eval().to(device)
        self.model.load_state_dict(state, strict=True)
        self.device = device
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """uint8 face crops ``(n, 160, 160, 3)`` -> L2-normalised float32 embeddings ``(n, 512)``."""
        out = [
            self.model(standardize_faces(faces[i : i + self.batch_size]).to(self.device)).cpu()
            for i in range(0, len(faces), self.batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, EMBEDDING_DIM), np.float32)


def load_face_embedder(
    weights_path: Optional[Path], device: Union[str, torch.device] = "cpu"
) -> Optional[FaceEmbedder]:
    """A :class:`FaceEmbedder`, or None (logged once) when no weights file is available."""
    if weights_path is None or not Path(weights_path).is_file():
        logger.info(
            "No FaceNet weights (%s): face embeddings skipped, lip crops only. To enable them, "
            "pass the path of InceptionResnetV1 VGGFace2 weights (20180402-114759-vggface2.pt).",
            weights_path,
        )
        return None
    return FaceEmbedder(weights_path, device)
