"""The dilated convolution stacks of Looking to Listen: audio (2-D) and visual (1-D) streams.

Every conv is followed by BatchNorm over *channels* (never over time frames) and ReLU, and
uses "same" padding, so any number of frames and any number of frequency bins pass through.
"""
from typing import List, Sequence

import torch
from torch import nn


def _same_padding(kernel: int, dilation: int) -> int:
    if kernel % 2 == 0:
        raise ValueError(f"Kernel sizes must be odd for 'same' padding, got {kernel}.")
    return dilation * (kernel - 1) // 2


class AudioStream(nn.Module):
    """2-D dilated conv stack on the compressed complex spectrogram.

    Layer ``i`` is a ``kernels[i]`` (time, freq) conv with ``dilations[i]`` (time, freq)
    and ``channels`` outputs; a final 1x1 conv maps to ``out_channels``.

    Args:
        channels: channels of the hidden layers.
        out_channels: channels of the last (1x1) layer.
        kernels: ``[[k_time, k_freq], ...]`` one per hidden layer (odd sizes).
        dilations: ``[[d_time, d_freq], ...]`` same length as ``kernels``.
        in_channels: input channels (2: real and imaginary part).

    ``set_channels_last(True)`` stores the conv weights channels-last (NHWC), the layout oneDNN
    (CPU) and cuDNN (tensor cores) convolve fastest; the activations follow the weights.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        kernels: Sequence[Sequence[int]],
        dilations: Sequence[Sequence[int]],
        in_channels: int = 2,
    ):
        super().__init__()
        if len(kernels) != len(dilations):
            raise ValueError(
                f"audio_kernels ({len(kernels)}) and audio_dilations ({len(dilations)}) "
                "must have the same length."
            )
        layers: List[nn.Module] = []
        for kernel, dilation in zip(kernels, dilations):
            padding = tuple(_same_padding(k, d) for k, d in zip(kernel, dilation))
            layers += _conv_bn_relu(
                nn.Conv2d(in_channels, channels, tuple(kernel), dilation=tuple(dilation),
                          padding=padding, bias=False),
                nn.BatchNorm2d(channels),
            )
            in_channels = channels
        layers += _conv_bn_relu(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.net = nn.Sequential(*layers)
        self.out_channels = out_channels
        self.channels_last = False

    def set_channels_last(self, enabled: bool) -> None:
        """Store the conv weights channels-last (``True``) or in torch's default layout (``False``).

        The outputs are the same up to float rounding; only the speed changes (README, Performance).
        """
        self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        self.channels_last = enabled

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 2, frames, freq)`` -> ``(batch, frames, out_channels * freq)``."""
        feats = self.net(spec)  # (batch, out_channels, frames, freq)
        batch, channels, frames, freqs = feats.shape
        return feats.permute(0, 2, 1, 3).reshape(batch, frames, channels * freqs)


class VisualStream(nn.Module):
    """1-D dilated conv stack over video frames, shared across speakers.

    Args:
        in_dim: input features per frame (the VisualEncoder's ``feat_dim``).
        channels: channels of every layer (and of the output).
        kernels: temporal kernel size of each layer (odd).
        dilations: temporal dilation of each layer, same length as ``kernels``.
    """

    def __init__(
        self, in_dim: int, channels: int, kernels: Sequence[int], dilations: Sequence[int]
    ):
        super().__init__()
        if len(kernels) != len(dilations):
            raise ValueError(
                f"visual_kernels ({len(kernels)}) and visual_dilations ({len(dilations)}) "
                "must have the same length."
            )
        layers: List[nn.Module] = []
        for kernel, dilation in zip(kernels, dilations):
            layers += _conv_bn_relu(
                nn.Conv1d(in_dim, channels, kernel, dilation=dilation,
                          padding=_same_padding(kernel, dilation), bias=False),
                nn.BatchNorm1d(channels),
            )
            in_dim = channels
        self.net = nn.Sequential(*layers)
        self.out_channels = channels if layers else in_dim

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(batch, n_src, frames, in_dim)`` -> ``(batch, n_src, frames, channels)``."""
        batch, n_src, frames, dim = feats.shape
        out = self.net(feats.reshape(batch * n_src, frames, dim).transpose(1, 2))
        return out.transpose(1, 2).reshape(batch, n_src, frames, -1)


def _conv_bn_relu(conv: nn.Module, norm: nn.Module) -> List[nn.Module]:
    return [conv, norm, nn.ReLU(inplace=True)]
