"""STFT with exact reconstruction and power-law compression of complex spectrograms.

Spectrograms here are real tensors of shape ``(..., 2, frames, freq)``: index 0 of the
``2`` axis is the real part, index 1 the imaginary part. This is the layout a 2-D
convolution over (time, freq) with the real/imaginary parts as channels wants.
"""
import functools

import numpy as np
import torch
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
    """Analysis/synthesis pair with exact reconstruction: asteroid-filterbanks' ``STFTFB``, computed with FFTs.

    The transform is ``Encoder(STFTFB)`` / ``Decoder(STFTFB)`` of asteroid-filterbanks (same scale, DC and
    Nyquist weights, frame alignment; the tests check both against it), but computed as ``rfft`` /
    ``irfft`` of windowed frames and an overlap-add instead of 1-D convolutions with ``n_freqs``
    windowed cosines and sines: 3x less time for the STFT, the iSTFT and its backward pass with the default
    768/768/256 sizes, 1.12x the training steps in a fixed time (README, Performance).

    The waveform is zero-padded by ``kernel_size - stride`` samples on the left and up to a
    whole frame on the right, so every input sample is covered by all of its overlapping
    windows; ``inverse`` crops back to the requested length. ``inverse(forward(x), len)``
    returns ``x`` to float precision for any length. Number of frames for ``time`` samples:
    ``(time + kernel_size - stride - 1) // stride + 1``.

    Args:
        n_filters: FFT size (even, at least ``kernel_size``); gives ``n_filters // 2 + 1`` frequency bins.
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
        if n_filters % 2 or n_filters < kernel_size:
            raise ValueError(f"The FFT size must be even and at least the window ({kernel_size}); got {n_filters}.")
        analysis = get_window(window, kernel_size).astype(np.float64)
        synthesis = synthesis_window(analysis, stride)
        scale = 0.5 * np.sqrt(kernel_size * n_filters / stride)  # STFTFB's normalisation of its DFT filters
        # the windowed samples sit in the middle of each FFT frame (STFTFB's "centered part")
        self.fft_offset = (n_filters - kernel_size) // 2
        self.register_buffer("analysis", torch.from_numpy(analysis / scale).float(), persistent=False)
        self.register_buffer("synthesis", torch.from_numpy(synthesis * n_filters / (2 * scale)).float(),
                             persistent=False)
        # STFTFB divides its DC and Nyquist filters by sqrt(2)
        edges = torch.ones(n_filters // 2 + 1)
        edges[[0, -1]] = 2 ** -0.5
        self.register_buffer("edge_weights", edges, persistent=False)
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.stride = stride
        self.sample_rate = float(sample_rate)
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
        padded = nn.functional.pad(wav, (self.left_pad, total - time - self.left_pad))
        frames = padded.unfold(-1, self.kernel_size, self.stride) * self.analysis  # (batch, frames, kernel)
        offset = self.fft_offset
        frames = nn.functional.pad(frames, (offset, self.n_filters - self.kernel_size - offset))
        spec = torch.fft.rfft(frames) * self.edge_weights  # (batch, frames, freq), complex
        return torch.view_as_real(spec).permute(0, 3, 1, 2)

    @float32
    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Spectrograms ``(batch, 2, frames, freq)`` -> waveforms ``(batch, length)``."""
        # irfft weighs the DC and Nyquist bins half as much as the others, STFTFB 1/sqrt(2) times as much
        spec = (spec / self.edge_weights).permute(0, 2, 3, 1).contiguous()  # (batch, frames, freq, 2)
        frames = torch.fft.irfft(torch.view_as_complex(spec), n=self.n_filters)  # (batch, frames, n_filters)
        frames = frames[..., self.fft_offset : self.fft_offset + self.kernel_size] * self.synthesis
        return overlap_add(frames, self.stride)[:, self.left_pad : self.left_pad + length]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Packages saved before the FFT version hold the DFT filters of asteroid-filterbanks' ``Encoder`` and
        ``Decoder`` (``encoder.*`` / ``decoder.*``): fixed functions of the sizes, not weights; they are dropped."""
        for key in [key for key in state_dict if key.startswith((prefix + "encoder.", prefix + "decoder."))]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add ``(batch, n_frames, frame_len)`` frames ``hop`` samples apart -> ``(batch, (n_frames - 1) * hop
    + frame_len)``: a sum of ``ceil(frame_len / hop)`` shifted copies (2.5x faster than ``nn.functional.fold`` here)."""
    batch, n_frames, frame_len = frames.shape
    shifts = -(-frame_len // hop)
    chunks = nn.functional.pad(frames, (0, shifts * hop - frame_len)).reshape(batch, n_frames, shifts, hop)
    wav = sum(
        nn.functional.pad(chunks[:, :, shift].reshape(batch, n_frames * hop), (shift * hop, (shifts - 1 - shift) * hop))
        for shift in range(shifts)
    )
    return wav[:, : (n_frames - 1) * hop + frame_len]


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


def magnitude_share_filter(est: torch.Tensor, mixture: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Wiener-like post-filter: each source becomes the mixture times its share of the estimated
    magnitudes, ``|E_k| / (sum_j |E_j| + |M - sum_j E_j|)`` (real, mixture phase).

    The residual ``M - sum_j E_j`` counts as one more source, so noise, voices without a face and
    a single estimate (``n_src = 1``) keep their part of the mixture instead of being handed to
    the estimates. The estimates then add up to at most the mixture, bin by bin.

    Args:
        est: source spectrograms ``(batch, n_src, 2, frames, freq)``.
        mixture: ``(batch, 2, frames, freq)``.
        eps: added to the squared magnitudes.

    Returns:
        torch.Tensor: ``(batch, n_src, 2, frames, freq)``.
    """
    magnitudes = _magnitude(est, eps)
    residual = _magnitude(mixture - est.sum(dim=1), eps).unsqueeze(1)
    share = magnitudes / (magnitudes.sum(dim=1, keepdim=True) + residual)
    return share * mixture.unsqueeze(1)
