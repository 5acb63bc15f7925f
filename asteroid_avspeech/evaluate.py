"""Stage 5: evaluate a trained model on a fixed test manifest with asteroid's metrics.

Metrics are computed **in the face order** (``compute_permutation=False``): output ``k`` must
be the voice of face ``k``, so a speaker swap counts as an error instead of being hidden by a
permutation search. An audio-only model (``use_visual=False``) gets no faces and is scored with
the best permutation, as it was trained. Three probes show whether and how the model uses the video:

- ``swapped``: the faces are exchanged between the speakers; a model that follows the faces
  now outputs the *other* voice, so its SI-SDR against the original target drops below 0 dB;
- ``frozen``: each face is replaced by its first frame repeated (identity kept, lip motion
  removed), which measures how much of the gain comes from the lips;
- ``no_faces``: no visual input at all (what ``asteroid-infer MODEL --files mix.wav`` does), scored
  with the best permutation: how well the model separates audio-only (trained on the items whose
  faces ``face_dropout`` hides).

For audio-visual models each row also says whether face order is the estimates' best permutation
(``face_order_correct``; mean: ``face_order_accuracy``): a mixture where it is not had a voice put on the
wrong face, which tells a model that separates but mismatches faces from one that separates poorly.

Writes ``all_metrics.csv`` (one row per mixture), ``final_metrics.json`` (means, ``<m>_imp``
improvements over the mixture, the face-order accuracy and the probes) and ``examples/`` (wavs +
spectrogram PNGs).
"""
import contextlib
import json
import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from asteroid.losses import PITLossWrapper
from asteroid.losses.sdr import pairwise_neg_sisdr, singlesrc_neg_sisdr
from asteroid.metrics import get_metrics
from tqdm import tqdm

from .io_utils import atomic_path
from .parallel import worker_pool

log = logging.getLogger(__name__)


def _probe_visuals(visual: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Probe inputs from a visual of shape ``(n_src, frames, ...)``."""
    frozen = visual[:, :1].expand_as(visual).contiguous()
    return {"swapped": visual.roll(1, dims=0), "frozen": frozen}


def _best_order(estimates: torch.Tensor, sources: torch.Tensor) -> Tuple[float, torch.Tensor]:
    """``(mean SI-SDR in dB, order)`` of the order of ``estimates`` ``(n_src, time)`` that best matches
    ``sources`` ``(n_src, time)``: ``estimates[order]`` lines up with ``sources``."""
    neg_si_sdr, order = PITLossWrapper.find_best_perm(pairwise_neg_sisdr(estimates[None], sources[None]))
    return -float(neg_si_sdr[0]), order[0]


def face_order_correct(estimates: torch.Tensor, sources: torch.Tensor) -> bool:
    """Whether face order is the best permutation (by SI-SDR) of ``estimates`` against ``sources``.

    Args:
        estimates: ``(n_src, time)``, output ``k`` meant for face ``k``.
        sources: ``(n_src, time)``, in face order.
    """
    return bool(torch.equal(_best_order(estimates, sources)[1], torch.arange(len(sources))))


def metrics_row(mixture_id: str, mixture: np.ndarray, sources: np.ndarray, estimates: np.ndarray,
                sample_rate: int, metrics_list: Sequence[str], compute_permutation: bool = False) -> Dict[str, Any]:
    """asteroid's ``get_metrics`` of one mixture as a row of ``all_metrics.csv``.

    Args:
        mixture_id: the row's ``mixture_id``.
        mixture: ``(time,)``.
        sources: ``(n_src, time)``.
        estimates: ``(n_src, time)``, in source order unless ``compute_permutation``.
        sample_rate: Hz.
        metrics_list: asteroid metric names.
        compute_permutation: score the best permutation of the estimates (audio-only models).
    """
    row = get_metrics(mixture, sources, estimates, sample_rate=sample_rate, metrics_list=list(metrics_list),
                      compute_permutation=compute_permutation, ignore_metrics_errors=True, filename=mixture_id)
    return {"mixture_id": mixture_id, **{k: float(v) for k, v in row.items()}}


def _done(fn: Callable[..., Any], *args) -> Future:
    """``fn(*args)`` run here and now, as a completed future."""
    future: Future = Future()
    future.set_result(fn(*args))
    return future


@contextlib.contextmanager
def metrics_pool(workers: int) -> Iterator[Callable[..., Future]]:
    """A ``submit(fn, *args) -> Future`` that scores in ``workers`` processes (<= 1: in this one).

    The metrics (BSS-eval SDR above all, then PESQ and STOI) cost ~3x the model's forward passes
    of a mixture: in worker processes they overlap with them. Workers are spawned (not forked from
    a process that runs torch's thread pool) with one BLAS/OpenMP thread each, and torch keeps
    ``threads - workers`` threads (at least one) here meanwhile. On 2 cores with 2 workers stage 5
    (200 mixtures) took 1 min 17-32 s instead of 2 min 12 s in one process; with the workers'
    default thread pools, or two torch threads here, the processes oversubscribed the cores and
    it took longer (5 min 24 s / 2 min 27 s).
    """
    if workers <= 1:
        yield _done
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - workers))
    try:
        with worker_pool(workers) as pool:
            yield pool.submit
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset, out_dir: Path, metrics_list: Sequence[str],
             n_examples: int = 4, probes: bool = True, device: str = "cpu", workers: int = 1) -> Dict[str, float]:
    """Evaluate ``model`` on every item of ``dataset`` and write the reports into ``out_dir``.

    Args:
        model: a LookingToListen (``forward_wav(wav, visual)`` -> ``(batch, n_src, time)``).
        dataset: items ``(mixture (time,), sources (n_src, time), visual (n_src, frames, ...))``.
        out_dir: where ``all_metrics.csv``, ``final_metrics.json`` and ``examples/`` go.
        metrics_list: asteroid metric names (``si_sdr``, ``sdr``, ``sir``, ``sar``, ``stoi``, ``pesq``).
        n_examples: how many mixtures to save as wav + spectrogram PNG.
        probes: also run the swapped-face, frozen-face and no-face probes (needs a visual model, n_src >= 2).
        device: ``"cpu"`` or ``"cuda"``.
        workers: processes that compute the metrics while the model separates (:func:`metrics_pool`).

    Returns:
        The final metrics (also written to ``final_metrics.json``).
    """
    if len(dataset) == 0:
        raise ValueError("The test set is empty: run stage 3 (local/make_mixtures.py) first.")
    out_dir = Path(out_dir)
    model = model.to(device).eval()
    sample_rate = int(model.sample_rate)
    audio_visual = getattr(model, "use_visual", True)
    use_probes = probes and audio_visual and getattr(model, "n_src", 1) >= 2
    scored: List[Tuple[Future, Dict[str, float]]] = []
    with metrics_pool(workers) as submit:
        for idx in tqdm(range(len(dataset)), desc="Evaluating", unit="mix"):
            mixture, sources, visual = dataset[idx]
            visual = torch.as_tensor(np.asarray(visual))
            faces = visual[None].to(device) if audio_visual else None
            estimate = model.forward_wav(mixture[None].to(device), faces)[0].cpu()
            mix_np, src_np, est_np = mixture.numpy(), sources.numpy(), estimate.numpy()
            future = submit(metrics_row, dataset.mixture_id(idx), mix_np, src_np, est_np, sample_rate,
                            metrics_list, not audio_visual)
            extra_columns = {}
            if audio_visual:
                extra_columns["face_order_correct"] = float(face_order_correct(estimate, sources))
            if use_probes:
                for name, probe in _probe_visuals(visual).items():
                    probe_est = model.forward_wav(mixture[None].to(device), probe[None].to(device))[0].cpu()
                    extra_columns[f"probe_{name}_si_sdr"] = float(-singlesrc_neg_sisdr(probe_est, sources).mean())
                audio_only_est = model.forward_wav(mixture[None].to(device))[0].cpu()
                extra_columns["probe_no_faces_si_sdr"] = _best_order(audio_only_est, sources)[0]
            scored.append((future, extra_columns))
            if idx < n_examples:
                save_example(out_dir / "examples" / dataset.mixture_id(idx), mix_np, src_np, est_np, sample_rate)
        rows = [{**future.result(), **columns} for future, columns in scored]
    return write_reports(rows, out_dir, metrics_list)


def write_reports(rows: List[Dict[str, float]], out_dir: Path, metrics_list: Sequence[str]) -> Dict[str, float]:
    """Write ``all_metrics.csv`` (one row per mixture) and ``final_metrics.json``; return the latter."""
    out_dir = Path(out_dir)
    table = pd.DataFrame(rows)
    with atomic_path(out_dir / "all_metrics.csv") as tmp:
        table.to_csv(tmp, index=False)
    final = summarize(table, metrics_list)
    with atomic_path(out_dir / "final_metrics.json") as tmp:
        tmp.write_text(json.dumps(final, indent=2))
    return final


def summarize(table: pd.DataFrame, metrics_list: Sequence[str]) -> Dict[str, float]:
    """Means of each metric, ``<m>_imp`` (output minus input), the face-order accuracy and the probe means."""
    final = {"n_mixtures": int(len(table))}
    for metric in metrics_list:
        if metric in table:
            final[metric] = float(table[metric].mean())
            final[f"input_{metric}"] = float(table[f"input_{metric}"].mean())
            final[f"{metric}_imp"] = float((table[metric] - table[f"input_{metric}"]).mean())
    if "face_order_correct" in table:
        final["face_order_accuracy"] = float(table["face_order_correct"].mean())
    for column in table.columns:
        if column.startswith("probe_"):
            final[column] = float(table[column].mean())
    return final


def save_example(folder: Path, mixture: np.ndarray, sources: np.ndarray, estimates: np.ndarray,
                 sample_rate: int) -> None:
    """Write ``mixture.wav``, ``s{k}.wav``, ``s{k}_estimate.wav`` and ``spectrograms.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    signals = {"mixture": mixture}
    for k in range(len(sources)):
        signals[f"s{k + 1}"] = sources[k]
        signals[f"s{k + 1}_estimate"] = estimates[k]
    # one common gain for all files of the example (relative levels kept), only to avoid clipping
    gain = min(1.0, 0.99 / max(float(np.abs(w).max()) for w in signals.values()))
    for name, wav in signals.items():
        with atomic_path(folder / f"{name}.wav") as tmp:
            sf.write(tmp, wav * gain, sample_rate, subtype="PCM_16")
    fig, axes = plt.subplots(len(signals), 1, figsize=(7, 1.6 * len(signals)), sharex=True)
    for ax, (name, wav) in zip(axes, signals.items()):
        ax.specgram(wav, NFFT=512, Fs=sample_rate, noverlap=352, cmap="magma")
        ax.set_ylabel(name, fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_path(folder / "spectrograms.png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
