"""Training losses with per-item permutation handling.

Items whose faces are given are scored in face order (output ``k`` against the voice of
face ``k``: a swap is an error), optionally mixed with their best-permutation loss
(``pit_weight``, see :func:`permuted_mean`). Items whose faces were dropped are scored with
the best permutation (PIT) alone, since their output order is arbitrary.

Shapes: estimates and targets ``(batch, n_src, time)``; ``pit`` a bool ``(batch,)`` or None
(None: every item has faces). Each loss returns a scalar, the mean over the batch.
"""
from typing import Any, Dict, Optional, Union

import torch
from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr
from asteroid.models.base_models import BaseModel
from torch import nn

from .models.spectral import STFT, power_compress


def check_pit_weight(pit_weight: float) -> float:
    """``pit_weight`` if it is in [0, 1): at 1 nothing would teach the outputs to follow the faces."""
    if isinstance(pit_weight, bool) or not isinstance(pit_weight, (int, float)) or not 0.0 <= pit_weight < 1.0:
        raise ValueError(f"pit_weight must be a number in [0, 1), got {pit_weight!r}.")
    return float(pit_weight)


def permuted_mean(pairwise: torch.Tensor, pit: Optional[torch.Tensor] = None,
                  pit_weight: float = 0.0) -> torch.Tensor:
    """Batch mean of the per-item loss, in face order or with the best permutation.

    Items with faces get ``(1 - pit_weight) * face-order loss + pit_weight * best-permutation
    loss``. Both terms agree once the outputs follow the faces; before that, the second one
    rewards separating the voices in whichever order, as an audio-only model learns to (by
    pitch, say) while the first teaches which output is which face.

    Args:
        pairwise: ``(batch, n_src, n_src)``, ``pairwise[b, i, j]`` = loss of estimate ``i``
            against target ``j``.
        pit: bool ``(batch,)``: True for faceless items (best permutation only). None: all False.
        pit_weight: share of the best-permutation loss for items with faces, in [0, 1).

    Returns:
        torch.Tensor: scalar.
    """
    ordered = pairwise.diagonal(dim1=-2, dim2=-1).mean(-1)  # (batch,)
    if pit_weight == 0.0 and (pit is None or not bool(pit.any())):
        return ordered.mean()  # no permutation search needed
    best, _ = PITLossWrapper.find_best_perm(pairwise)  # (batch,)
    with_faces = (1.0 - pit_weight) * ordered + pit_weight * best
    if pit is None:
        return with_faces.mean()
    return torch.where(pit.to(pairwise.device), best, with_faces).mean()


class CompressedSpectrogramMSE(nn.Module):
    """The paper's loss: squared error between power-law compressed complex spectrograms.

    Both waveforms go through the same STFT (asteroid-filterbanks ``STFTFB``) and the
    compression ``|X|^p e^{j angle(X)}``; the loss is the mean over (re/im, frames, freq) of
    the squared difference, per (estimate, target) pair.

    Args:
        n_filters, kernel_size, stride, sample_rate: STFT settings (use the model's).
        power: compression exponent.
        pit_weight: see :func:`permuted_mean`.
    """

    def __init__(
        self,
        n_filters: int = 512,
        kernel_size: int = 400,
        stride: int = 160,
        sample_rate: float = 16000.0,
        power: float = 0.3,
        pit_weight: float = 0.0,
    ):
        super().__init__()
        self.stft = STFT(n_filters, kernel_size, stride, sample_rate=sample_rate)
        self.power = power
        self.pit_weight = check_pit_weight(pit_weight)

    def compressed(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, n_src, time)`` -> ``(batch, n_src, 2 * frames * freq)``."""
        batch, n_src, time = wav.shape
        spec = power_compress(self.stft(wav.reshape(batch * n_src, time)), self.power)
        return spec.reshape(batch, n_src, -1)

    def pairwise(self, est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(batch, n_src, time)`` x2 -> ``(batch, n_src, n_src)`` pairwise MSE."""
        est_c, target_c = self.compressed(est), self.compressed(target)
        return (est_c.unsqueeze(2) - target_c.unsqueeze(1)).pow(2).mean(-1)

    def forward(self, est: torch.Tensor, target: torch.Tensor,
                pit: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Scalar loss; see the module docstring for ``pit``."""
        return permuted_mean(self.pairwise(est, target), pit, self.pit_weight)


class NegSISDR(nn.Module):
    """Negative SI-SDR (asteroid's ``pairwise_neg_sisdr``) with per-item permutation handling.

    Args:
        pit_weight: see :func:`permuted_mean`.
    """

    def __init__(self, pit_weight: float = 0.0):
        super().__init__()
        self.pit_weight = check_pit_weight(pit_weight)

    def forward(self, est: torch.Tensor, target: torch.Tensor,
                pit: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Scalar loss (dB, lower is better); see the module docstring for ``pit``."""
        return permuted_mean(pairwise_neg_sisdr(est, target), pit, self.pit_weight)


LOSSES = {"spec_mse": CompressedSpectrogramMSE, "si_sdr": NegSISDR}


def make_loss(name: str, model: Union[BaseModel, Dict[str, Any], None] = None,
              pit_weight: float = 0.0) -> nn.Module:
    """Loss by name: ``"spec_mse"`` (the paper's compressed-spectrogram MSE) or ``"si_sdr"``.

    Args:
        name: key of :data:`LOSSES`.
        model: the model, or its ``get_model_args()``; ``spec_mse`` takes the STFT and
            compression settings from it (defaults when None).
        pit_weight: see :func:`permuted_mean`.
    """
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    if name != "spec_mse":
        return LOSSES[name](pit_weight=pit_weight)
    args = model.get_model_args() if isinstance(model, BaseModel) else (model or {})
    keys = ("n_filters", "kernel_size", "stride", "sample_rate", "power")
    return CompressedSpectrogramMSE(**{key: args[key] for key in keys if key in args}, pit_weight=pit_weight)
