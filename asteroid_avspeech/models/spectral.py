"""STFT with exact reconstruction and power-law compression of complex spectrograms.

Spectrograms here are real tensors of shape ``(..., 2, frames, freq)``: index 0 of the
``2`` axis is the real part, index 1 the imaginary part. This is the layout a 2-D
convolution over (time, freq) with the real/imaginary parts as channels wants.
"""
import functools

import numpy as np
import torch
from asteroid_filterbanks import Decoder, Encoder, STFTFB
from scipy.signal import get_window
from torch import nn


def synthesis_window(analysis: np.ndarray, hop: int) -> np.ndarray:
    """Synthesis window giving exact reconstruction with ``asteroid_filterbanks.STFTFB``.

    ``asteroid_filterbanks.stft_fb.perfect_synthesis_window`` rounds its gain to an integer
    (``int(0.5 * kernel / hop)``), which is off by 0.8 for the paper's 400/160 window/hop.
    This computes the exact gain: overlap-added ``analysis * synthesis * 2 * hop / kernel``
    sums to one, given STFTFB's filter normalisation.

    Args:
        analysis: analysis window, shape ``(kernel,)``.
        hop: hop size in samples.

    Returns:
        np.ndarray: synthesis window, shape ``(kernel,)``.
    """
    kernel = len(analysis)
    squared = analysis.astype(np.float64) ** 2
    overlap = np.zeros(kernel)
    for shift in range(-((kernel - 1) // hop), (kernel - 1) // hop + 1):
        lo, hi = max(0, shift * hop), min(kernel, kernel + shift * hop)
        overlap[lo - shift * hop : hi - shift * hop] += squared[lo:hi]
    overlap = np.where(overlap > 0, overlap, np.finfo(np.float64).tiny)
    return 0.5 * kernel / hop * analysis / overlap


def float32(method):
    """Run ``method(self, tensor, ...)`` in float32 with autocast off.

    Under mixed-precision training (``training.precision``) the STFT and its inverse stay in
    float32 (reconstruction SNR ~130 dB): merely rounding a waveform to bfloat16 costs ~56 dB
    SNR, which would cap every estimate and target.
    """

    @functools.wraps(method)
    def wrapper(self, tensor: torch.Tensor, *args, **kwargs):
        with torch.autocast(tensor.device.type, enabled=False):
            return method(self, tensor.float(), *args, **kwargs)

    return wrapper


class STFT(nn.Module):
    """Analysis/synthesis pair (asteroid-filterbanks ``STFTFB``) with exact reconstruction.

    The waveform is zero-padded by ``kernel_size - stride`` samples on the left and up to a
    whole frame on the right, so every input sample is covered by all of its overlapping
    windows; ``inverse`` crops back to the requested length. ``inverse(forward(x), len)``
    returns ``x`` to float precision for any length. Number of frames for ``time`` samples:
    ``(time + kernel_size - stride - 1) // stride + 1``.

    Args:
        n_filters: FFT size; gives ``n_filters // 2 + 1`` frequency bins.
        kernel_size: window length in samples.
        stride: hop size in samples.
        sample_rate: sample rate of the waveforms.
        window: analysis window name for ``scipy.signal.get_window``.
    """

    def __init__(
        self,
        n_filters: int = 512,
        kernel_size: int = 400,
        stride: int = 160,
        sample_rate: float = 16000.0,
        window: str = "hann",
    ):
        super().__init__()
        analysis = get_window(window, kernel_size).astype(np.float64)
        synthesis = synthesis_window(analysis, stride)
        self.encoder = Encoder(
            STFTFB(n_filters, kernel_size, stride, window=analysis, sample_rate=sample_rate)
        )
        self.decoder = Decoder(
            STFTFB(n_filters, kernel_size, stride, window=synthesis, sample_rate=sample_rate)
        )
        self.kernel_size = kernel_size
        self.stride = stride
        self.n_freqs = n_filters // 2 + 1

    @property
    def left_pad(self) -> int:
        """Zeros added before the first sample (samples)."""
        return self.kernel_size - self.stride

    def n_frames(self, time: int) -> int:
        """Number of STFT frames for a waveform of ``time`` samples."""
        return (time + self.left_pad - 1) // self.stride + 1

    def frame_centres(self, n_frames: int) -> torch.Tensor:
        """Centre of each frame in input samples (may be negative for the first one)."""
        return torch.arange(n_frames) * self.stride + self.kernel_size / 2 - self.left_pad

    @float32
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(batch, time)`` -> spectrograms ``(batch, 2, frames, freq)``."""
        time = wav.shape[-1]
        total = (self.n_frames(time) - 1) * self.stride + self.kernel_size
        padded = nn.functional.pad(wav.unsqueeze(1), (self.left_pad, total - time - self.left_pad))
        spec = self.encoder(padded)  # (batch, 2 * freq, frames), real parts first
        spec = spec.reshape(wav.shape[0], 2, self.n_freqs, -1)
        return spec.transpose(-1, -2)

    @float32
    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Spectrograms ``(batch, 2, frames, freq)`` -> waveforms ``(batch, length)``."""
        batch, _, frames, freqs = spec.shape
        flat = spec.transpose(-1, -2).reshape(batch, 2 * freqs, frames)
        wav = self.decoder(flat).reshape(batch, -1)
        return wav[:, self.left_pad : self.left_pad + length]


def _magnitude(spec: torch.Tensor, eps: float) -> torch.Tensor:
    """Eps-safe magnitude of ``(..., 2, frames, freq)`` -> ``(..., 1, frames, freq)``."""
    return (spec.pow(2).sum(dim=-3, keepdim=True) + eps).sqrt()


def power_compress(spec: torch.Tensor, power: float = 0.3, eps: float = 1e-8) -> torch.Tensor:
    """Power-law compression of a complex spectrogram: ``|X|^p e^{j angle(X)}``.

    The magnitude is compressed and the phase kept (not the real and imaginary parts
    separately). ``eps`` keeps the gradient finite at zero magnitude.

    Args:
        spec: ``(..., 2, frames, freq)``.
        power: compression exponent ``p``.
        eps: added to the squared magnitude.

    Returns:
        torch.Tensor: same shape as ``spec``.
    """
    return spec * _magnitude(spec, eps).pow(power - 1)


def power_decompress(spec: torch.Tensor, power: float = 0.3, eps: float = 1e-8) -> torch.Tensor:
    """Inverse of :func:`power_compress`: ``|Y|^(1/p) e^{j angle(Y)}``, same shapes."""
    return spec * _magnitude(spec, eps).pow(1.0 / power - 1)


def complex_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Complex product of ``(..., 2, frames, freq)`` tensors (broadcasting)."""
    a_re, a_im = a.unbind(dim=-3)
    b_re, b_im = b.unbind(dim=-3)
    return torch.stack([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re], dim=-3)
