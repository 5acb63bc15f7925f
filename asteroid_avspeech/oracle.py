"""Oracle (ideal) masks: the ceiling of mask-based separation for a given STFT.

An oracle mask is computed from the true sources, so no model can be told apart from it by
the mixture alone; applied to the mixture spectrogram with the mixture's phase it shows how
good separation by masking with that STFT can get. Kinds (``S_k``: source ``k``, ``Y``: the
mixture, per time-frequency bin):

- ``irm``: ideal ratio mask ``|S_k| / |Y|``, clipped to [0, 1];
- ``ibm``: ideal binary mask, 1 where source ``k`` is the loudest;
- ``wiener``: ``|S_k|^2 / sum_j |S_j|^2`` (sums to 1 over sources);
- ``psm``: phase-sensitive mask ``Re(S_k Y*) / |Y|^2``, clipped to [0, 1]: the best real mask
  for the mixture's phase.

Shapes: spectrograms ``(..., 2, frames, freq)`` as in :mod:`.models.spectral`, masks
``(n_src, 1, frames, freq)``.
"""
from typing import Dict, List, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .evaluate import metrics_row
from .models.spectral import STFT

ORACLE_MASKS = ("irm", "ibm", "wiener", "psm")


def _power(spec: torch.Tensor) -> torch.Tensor:
    """``(..., 2, frames, freq)`` -> ``(..., 1, frames, freq)`` squared magnitude."""
    return spec.pow(2).sum(dim=-3, keepdim=True)


def oracle_mask(sources: torch.Tensor, mixture: torch.Tensor, kind: str,
                eps: float = 1e-10) -> torch.Tensor:
    """The ideal mask of each source.

    Args:
        sources: ``(n_src, 2, frames, freq)`` source spectrograms.
        mixture: ``(2, frames, freq)`` mixture spectrogram.
        kind: one of :data:`ORACLE_MASKS`.
        eps: keeps silent bins finite.

    Returns:
        torch.Tensor: ``(n_src, 1, frames, freq)`` real masks.
    """
    src_power, mix_power = _power(sources), _power(mixture)
    if kind == "irm":
        return (src_power.sqrt() / (mix_power.sqrt() + eps)).clamp(max=1.0)
    if kind == "ibm":
        return (src_power == src_power.max(dim=0, keepdim=True).values).to(sources.dtype)
    if kind == "wiener":
        return src_power / (src_power.sum(dim=0, keepdim=True) + eps)
    if kind == "psm":
        return ((sources * mixture).sum(dim=-3, keepdim=True) / (mix_power + eps)).clamp(0.0, 1.0)
    raise ValueError(f"Unknown oracle mask {kind!r}; valid: {', '.join(ORACLE_MASKS)}.")


def oracle_separate(mixture: torch.Tensor, sources: torch.Tensor, kind: str, stft: STFT) -> torch.Tensor:
    """Separate ``mixture (time,)`` with the oracle mask of ``sources (n_src, time)``.

    Returns:
        torch.Tensor: ``(n_src, time)`` estimates (mixture phase).
    """
    mix_spec = stft(mixture[None])[0]  # (2, frames, freq)
    masks = oracle_mask(stft(sources), mix_spec, kind)
    return stft.inverse(masks * mix_spec, mixture.shape[-1])


def oracle_rows(dataset, kinds: Sequence[str], stft: STFT,
                metrics_list: Sequence[str]) -> Dict[str, List[Dict[str, float]]]:
    """asteroid metrics of every oracle mask on every mixture of ``dataset``.

    Args:
        dataset: items ``(mixture (time,), sources (n_src, time), ...)`` with ``mixture_id(idx)``.
        kinds: oracle masks to score (see :data:`ORACLE_MASKS`).
        stft: the STFT the masks live in (a model's ``stft``).
        metrics_list: asteroid metric names.

    Returns:
        One list of rows per kind, as :func:`~.evaluate.evaluate` writes them (in source order).
    """
    unknown = set(kinds) - set(ORACLE_MASKS)
    if unknown:
        raise ValueError(f"Unknown oracle mask(s) {sorted(unknown)}; valid: {', '.join(ORACLE_MASKS)}.")
    rows: Dict[str, List[Dict[str, float]]] = {kind: [] for kind in kinds}
    sample_rate = int(stft.sample_rate)
    for idx in tqdm(range(len(dataset)), desc="Oracle masks", unit="mix"):
        mixture, sources = dataset[idx][:2]
        mixture, sources = torch.as_tensor(np.asarray(mixture)), torch.as_tensor(np.asarray(sources))
        for kind in kinds:
            estimate = oracle_separate(mixture, sources, kind, stft)
            rows[kind].append(metrics_row(dataset.mixture_id(idx), mixture.numpy(), sources.numpy(),
                                          estimate.numpy(), sample_rate, metrics_list))
    return rows
