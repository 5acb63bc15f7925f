"""Training losses with per-item permutation handling.

Items whose faces are given are scored in face order (output ``k`` against the voice of
face ``k``: no permutation search, a swap is an error). Items whose faces were dropped are
scored with the best permutation (PIT), since their output order is arbitrary.

Shapes: estimates and targets ``(batch, n_src, time)``; ``pit`` a bool ``(batch,)`` or None
(None: face order for every item). Each loss returns a scalar, the mean over the batch.
"""
from typing import Any, Dict, Optional, Union

import torch
from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr
from asteroid.models.base_models import BaseModel
from torch import nn

from .models.spectral import STFT, power_compress


def permuted_mean(pairwise: torch.Tensor, pit: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Batch mean of the per-item loss, in face order or with the best permutation.

    Args:
        pairwise: ``(batch, n_src, n_src)``, ``pairwise[b, i, j]`` = loss of estimate ``i``
            against target ``j``.
        pit: bool ``(batch,)``: True where the best permutation is used. None: all False.

    Returns:
        torch.Tensor: scalar.
    """
    ordered = pairwise.diagonal(dim1=-2, dim2=-1).mean(-1)  # (batch,)
    if pit is None or not bool(pit.any()):
        return ordered.mean()
    best, _ = PITLossWrapper.find_best_perm(pairwise)  # (batch,)
    return torch.where(pit.to(pairwise.device), best, ordered).mean()


class CompressedSpectrogramMSE(nn.Module):
    """The paper's loss: squared error between power-law compressed complex spectrograms.

    Both waveforms go through the same STFT (asteroid-filterbanks ``STFTFB``) and the
    compression ``|X|^p e^{j angle(X)}``; the loss is the mean over (re/im, frames, freq) of
    the squared difference, per (estimate, target) pair.

    Args:
        n_filters, kernel_size, stride, sample_rate: STFT settings (use the model's).
        power: compression exponent.
    """

    def __init__(
        self,
        n_filters: int = 512,
        kernel_size: int = 400,
        stride: int = 160,
        sample_rate: float = 16000.0,
        power: float = 0.3,
    ):
        super().__init__()
        self.stft = STFT(n_filters, kernel_size, stride, sample_rate=sample_rate)
        self.power = power

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
        return permuted_mean(self.pairwise(est, target), pit)


class NegSISDR(nn.Module):
    """Negative SI-SDR (asteroid's ``pairwise_neg_sisdr``) with per-item permutation handling."""

    def forward(self, est: torch.Tensor, target: torch.Tensor,
                pit: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Scalar loss (dB, lower is better); see the module docstring for ``pit``."""
        return permuted_mean(pairwise_neg_sisdr(est, target), pit)


LOSSES = {"spec_mse": CompressedSpectrogramMSE, "si_sdr": NegSISDR}


def make_loss(name: str, model: Union[BaseModel, Dict[str, Any], None] = None) -> nn.Module:
    """Loss by name: ``"spec_mse"`` (the paper's compressed-spectrogram MSE) or ``"si_sdr"``.

    Args:
        name: key of :data:`LOSSES`.
        model: the model, or its ``get_model_args()``; ``spec_mse`` takes the STFT and
            compression settings from it (defaults when None).
    """
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    if name != "spec_mse":
        return LOSSES[name]()
    args = model.get_model_args() if isinstance(model, BaseModel) else (model or {})
    keys = ("n_filters", "kernel_size", "stride", "sample_rate", "power")
    return CompressedSpectrogramMSE(**{key: args[key] for key in keys if key in args})
