"""Per-frame visual features of each speaker: lip crops or precomputed face embeddings."""
from typing import List, Optional

import torch
from asteroid.models.base_models import BaseModel
from torch import nn

from .serialization import PlainSerializable

VISUAL_KINDS = ("lips", "embeddings")


def present_frames(visual: torch.Tensor, n_frame_dims: int) -> torch.Tensor:
    """Which frames hold a face: any non-zero value in the frame.

    Args:
        visual: ``(batch, n_src, frames, *frame_shape)`` with ``n_frame_dims`` trailing dims.
        n_frame_dims: number of trailing dims making one frame (2 for ``H, W``, 1 for ``emb``).

    Returns:
        torch.Tensor: float ``(batch, n_src, frames, 1)``, 1 where a face is present.
    """
    dims = tuple(range(-n_frame_dims, 0))
    return (visual != 0).any(dim=dims).unsqueeze(-1).float()


class LipEncoder(nn.Module):
    """Small trainable CNN on grayscale mouth crops.

    Per frame: ``len(channels)`` blocks of 3x3 conv (stride 2) + BatchNorm2d + ReLU, global
    average pooling, linear to ``feat_dim``; then one temporal conv (kernel
    ``temporal_kernel``) over frames. Any crop size.

    Args:
        feat_dim: output features per frame.
        channels: conv channels of each spatial block.
        temporal_kernel: kernel size of the temporal conv (odd).
    """

    def __init__(self, feat_dim: int, channels: List[int], temporal_kernel: int = 3):
        super().__init__()
        blocks, in_ch = [], 1
        for out_ch in channels:
            blocks += [
                nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(),
            ]
            in_ch = out_ch
        self.spatial = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.project = nn.Linear(in_ch, feat_dim)
        self.temporal = nn.Conv1d(feat_dim, feat_dim, temporal_kernel, padding=temporal_kernel // 2)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, H, W)`` float -> ``(batch, frames, feat_dim)``."""
        batch, frames, height, width = crops.shape
        feats = self.project(self.spatial(crops.reshape(batch * frames, 1, height, width)))
        feats = feats.reshape(batch, frames, -1).transpose(1, 2)
        return torch.relu(self.temporal(feats)).transpose(1, 2)


class VisualEncoder(PlainSerializable, BaseModel):
    """Visual front-end: one feature vector per video frame and speaker.

    Two kinds of input:

    - ``"lips"``: grayscale mouth crops ``(batch, n_src, frames, H, W)``, uint8 in [0, 255] or
      float in [0, 1], through :class:`LipEncoder` (a small trainable CNN, the modern path).
    - ``"embeddings"``: precomputed face embeddings ``(batch, n_src, frames, in_dim)`` (the
      paper's FaceNet path), through a bias-free linear layer.

    Missing faces (the paper's rule): a frame whose input is all zeros (a zero crop or a zero
    embedding) gives an all-zero output feature for that frame: the output is multiplied by
    a presence mask computed from the input, so neither the lip CNN's biases nor its
    temporal conv (which sees neighbouring frames) can make it non-zero. A speaker whose
    visual is all zeros therefore gives all-zero features, which is also how
    :class:`LookingToListen` represents ``visual=None`` (audio-only input).

    This is a sub-module of :class:`LookingToListen` and is also serializable on its own
    (``serialize`` / ``from_pretrained``), e.g. to share a trained lip front-end. It is not
    a separation model: :meth:`forward_wav` raises ``TypeError``.

    Args:
        kind: ``"lips"`` or ``"embeddings"``.
        feat_dim: output features per frame.
        in_dim: embedding size (``"embeddings"`` only).
        lip_channels: conv channels of the lip CNN blocks (``"lips"`` only).
        sample_rate: sample rate of the audio this encoder is paired with (BaseModel API).
    """

    def __init__(
        self,
        kind: str = "lips",
        feat_dim: int = 64,
        in_dim: int = 512,
        lip_channels: Optional[List[int]] = None,
        sample_rate: float = 16000.0,
    ):
        super().__init__(sample_rate=sample_rate, in_channels=None)
        if kind not in VISUAL_KINDS:
            raise ValueError(
                f"Unknown visual kind {kind!r}; valid kinds: {', '.join(VISUAL_KINDS)}"
            )
        self.kind = kind
        self.feat_dim = feat_dim
        self.in_dim = in_dim
        self.lip_channels = list(lip_channels) if lip_channels is not None else [16, 32, 32]
        if kind == "lips":
            self.net = LipEncoder(feat_dim, self.lip_channels)
        else:
            self.net = nn.Linear(in_dim, feat_dim, bias=False)

    @property
    def n_frame_dims(self) -> int:
        """Trailing dims of one input frame: 2 (``H, W``) for lips, 1 for embeddings."""
        return 2 if self.kind == "lips" else 1

    def check_input(self, visual: torch.Tensor, n_src: Optional[int] = None) -> None:
        """Raise ``ValueError`` naming the expected shape if ``visual`` does not fit."""
        expected = (
            "(batch, n_src, frames, H, W)"
            if self.kind == "lips"
            else f"(batch, n_src, frames, {self.in_dim})"
        )
        bad_dim = self.kind == "embeddings" and visual.ndim == 4 and visual.shape[-1] != self.in_dim
        bad_src = n_src is not None and visual.ndim >= 2 and visual.shape[1] != n_src
        if visual.ndim != 3 + self.n_frame_dims or bad_dim or bad_src:
            src = f" with n_src={n_src}" if n_src is not None else ""
            raise ValueError(
                f"Visual input for kind {self.kind!r} must be {expected}{src}; "
                f"got shape {tuple(visual.shape)}."
            )

    def forward(self, visual: torch.Tensor) -> torch.Tensor:
        """Visual features of each speaker.

        Args:
            visual: ``(batch, n_src, frames, H, W)`` (lips) or
                ``(batch, n_src, frames, in_dim)`` (embeddings).

        Returns:
            torch.Tensor: ``(batch, n_src, frames, feat_dim)``, zero where no face.
        """
        self.check_input(visual)
        batch, n_src, frames = visual.shape[:3]
        present = present_frames(visual, self.n_frame_dims)
        if visual.dtype == torch.uint8:
            visual = visual.float() / 255.0
        visual = visual.float().reshape(batch * n_src, frames, *visual.shape[3:])
        feats = self.net(visual).reshape(batch, n_src, frames, self.feat_dim)
        return feats * present

    def forward_wav(self, wav, *args, **kwargs):
        """Not applicable: a visual encoder does not separate waveforms."""
        raise TypeError(
            "VisualEncoder encodes video frames, it does not separate audio: "
            "use LookingToListen.forward_wav for separation."
        )

    def get_model_args(self) -> dict:
        """Arguments to re-instantiate the encoder (plain Python types)."""
        return dict(
            kind=self.kind,
            feat_dim=self.feat_dim,
            in_dim=self.in_dim,
            lip_channels=list(self.lip_channels),
            sample_rate=float(self.sample_rate),
        )
