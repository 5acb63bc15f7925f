"""Benchmarks: model cost, data-preparation speed and inference speed, side by side.

Every function returns plain dicts (JSON-ready); :func:`run_benchmark` runs them all and
:func:`to_markdown` renders the result as tables.

- Model: parameters; MACs per second of audio, *counted* on a real forward (and
  forward+backward) pass with ``torch.utils.flop_counter.FlopCounterMode`` plus an exact shape
  formula for the fused oneDNN LSTM op it has no rule for (``aten.mkldnn_rnn_layer``);
  throughput in seconds of audio per second for the forward pass (eval mode, no autograd) and
  the training step (forward + backward), with the audio stream's convs in torch's default
  layout and channels-last (as training runs them); peak memory of each; achieved GFLOP/s as a share of
  the GFLOP/s of a large matrix product measured in the same run (how close to the machine's
  limit the model runs).
- Training layout: full training steps (with Adam) of the ``small`` preset, default layout against
  channels-last, alternating in one process (:func:`training_step_layouts`).
- STFT: the model's STFT, iSTFT and backward pass computed with FFTs against asteroid-filterbanks'
  convolutions with the same filters (:func:`stft_speed`).
- Memory: each model configuration runs in a fresh (spawned) process. On CPU its peak is the
  growth of ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the process' resident high-water
  mark) over the pass, beyond the model and inputs; on CUDA ``torch.cuda.max_memory_allocated``
  beyond what was allocated before the pass. ``tracemalloc`` does not see torch's allocations.
- Fast inference (:mod:`asteroid_avspeech.models.fast_inference`): plain fp32 eager against
  channels-last and bf16 autocast, with the SI-SDR of each output against the plain output.
- Data preparation: stage 0 (generated clips) and stage 2 (keyframe face tracking + lip crops,
  :func:`asteroid_avspeech.video.benchmark.benchmark_tracking`) against MTCNN on every frame;
  stage 2's MTCNN with its weights channels-last against torch's default layout (:func:`detector_layouts`).
- Inference: real-time factor of video in -> one track per face out, tracking included
  (:func:`asteroid_avspeech.separate.separate_video`).

Timings are wall-clock seconds, the best of a few runs (on a shared machine the best run is the
one least disturbed by other processes).
"""
import functools
import itertools
import json
import logging
import math
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from asteroid.losses.sdr import singlesrc_neg_sisdr
from torch.utils.flop_counter import FlopCounterMode

from .config import PAPER_STFT
from .models.fast_inference import PRECISIONS, cpu_has_bf16, cpu_runs_bf16, inference_context
from .models.looking_to_listen import LookingToListen
from .video.crops import LIP_SIZE

log = logging.getLogger(__name__)

#: Faces that ship inside installed wheels (scikit-image, matplotlib): stage 0 needs no download.
BENCHMARK_FACES = ("astronaut", "grace_hopper")

#: Inference variants compared by :func:`inference_variants`: name -> ``inference_context`` args
#: (``None``: the plain model, fp32, eager, default layout, under ``torch.no_grad``).
INFERENCE_VARIANTS: Dict[str, Optional[Dict[str, Any]]] = {
    "plain fp32": None,
    "fp32 + channels-last": dict(precision="fp32", channels_last=True),
    "bf16 autocast": dict(precision="bf16", channels_last=False),
    "bf16 autocast + channels-last": dict(precision="bf16", channels_last=True),
}


# ---------------------------------------------------------------------------- machine
def machine_info(device: str = "cpu") -> Dict[str, Any]:
    """CPU / GPU name, cores, torch threads and versions, load average (a shared machine shows)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_bf16": cpu_has_bf16(),
        "cpu_runs_bf16": cpu_runs_bf16(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def best_time(fn: Callable[[], Any], repeats: int, device: str = "cpu", max_seconds: float = 60.0,
              first: Optional[float] = None) -> float:
    """Best wall time of ``fn()`` over up to ``repeats`` runs.

    Stops early once the runs took ``max_seconds`` together (long runs need no statistics).
    ``first``: time of a run already made (a warm-up), counted as one of the runs.
    """
    times = [first] if first is not None else []
    while len(times) < max(repeats, 1) and sum(times) < max_seconds:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32, size: int = 4096,
                  repeats: int = 3) -> float:
    """GFLOP/s of a ``size x size`` matrix product in ``dtype`` (the machine's practical limit)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)  # warm-up
    seconds = best_time(lambda: torch.mm(a, b), repeats, device)
    return 2 * size**3 / seconds / 1e9


# ---------------------------------------------------------------------------- model cost
def _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape, *args, **kwargs) -> int:
    """FLOPs of one direction of one LSTM/GRU layer (``aten.mkldnn_rnn_layer``): one
    ``(4H x in)`` and one ``(4H x H)`` matrix-vector product per step and batch item."""
    steps = math.prod(input_shape[:-1])
    return 2 * steps * (math.prod(w_ih_shape) + math.prod(w_hh_shape))


def _rnn_layer_backward_flops(input_shape, w_ih_shape, w_hh_shape, *args, **kwargs) -> int:
    """Backward of :func:`_rnn_layer_flops`: gradients of the inputs and of the weights."""
    return 2 * _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape)


def _real_fft_flops(real_shape) -> int:
    """FLOPs of real FFTs over the last dim of ``real_shape`` (the real side), the usual ``2.5 n log2 n`` each."""
    return int(2.5 * math.prod(real_shape) * math.log2(real_shape[-1]))


def _rfft_flops(input_shape, *args, **kwargs) -> int:
    """``aten._fft_r2c``: real input, the STFT (:mod:`~asteroid_avspeech.models.spectral`)."""
    return _real_fft_flops(input_shape)


def _irfft_flops(*args, out_shape, **kwargs) -> int:
    """``aten._fft_c2r``: real output, the iSTFT."""
    return _real_fft_flops(out_shape)


#: FLOP rules for ops ``FlopCounterMode`` has none for (the CPU LSTM is one fused oneDNN op; FFTs).
_EXTRA_FLOP_RULES = {
    torch.ops.aten.mkldnn_rnn_layer: _rnn_layer_flops,
    torch.ops.aten.mkldnn_rnn_layer_backward: _rnn_layer_backward_flops,
    torch.ops.aten._fft_r2c: _rfft_flops,
    torch.ops.aten._fft_c2r: _irfft_flops,
}


def random_inputs(model: LookingToListen, batch: int, seconds: float, device: str = "cpu",
                  seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random mixture ``(batch, time)`` and visual input of the model's kind.

    Returns:
        ``wav`` and ``visual``: ``(batch, n_src, frames, lip_size, lip_size)`` uint8 lip crops or
        ``(batch, n_src, frames, emb_dim)`` embeddings (crops of the model's ``lip_size``).
    """
    gen = torch.Generator().manual_seed(seed)
    time_ = int(round(seconds * model.sample_rate))
    frames = max(1, round(seconds * model.fps))
    wav = 0.1 * torch.randn(batch, time_, generator=gen)
    if model.sizes["visual_kind"] == "lips":
        shape = (batch, model.n_src, frames, model.lip_size, model.lip_size)
        visual = torch.randint(1, 256, shape, generator=gen, dtype=torch.uint8)
    else:
        visual = torch.randn(batch, model.n_src, frames, model.sizes["visual_in_dim"], generator=gen)
    return wav.to(device), visual.to(device)


def count_macs(model: LookingToListen, seconds: float = 1.0) -> Dict[str, Any]:
    """MACs per second of audio, counted on one forward and one forward+backward pass (batch 1).

    Returns:
        ``{"forward": MACs/s, "forward_backward": MACs/s, "by_module": {name: forward MACs/s}}``
        (``by_module``: the model's direct children, and ``other`` for the rest, the iSTFT). Counted on CPU (the count does not depend
        on the device), the model is left on CPU in eval mode.
    """
    model = model.cpu()
    wav, visual = random_inputs(model, 1, seconds)
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_RULES)
    model.eval()
    with counter, torch.no_grad():
        model(wav, visual)
    forward = counter.get_total_flops() / 2 / seconds
    by_module = {}
    for name, ops in counter.get_flop_counts().items():
        if name.count(".") == 1:
            by_module[name.split(".", 1)[1]] = sum(ops.values()) / 2 / seconds
    # work of sub-modules called by the model itself rather than by a child's forward (the iSTFT)
    by_module["other"] = forward - sum(by_module.values())
    model.train()
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_RULES)
    with counter:
        model(wav, visual).square().mean().backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"forward": forward, "forward_backward": counter.get_total_flops() / 2 / seconds,
            "by_module": by_module}


def _memory_bytes(device: str, peak: bool) -> int:
    """CUDA: allocated bytes (``peak``: the allocator's peak). CPU: resident set size of this
    process (``peak``: its high-water mark, ``ru_maxrss``)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() if peak else torch.cuda.memory_allocated()
    if peak:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _autocast(device: str, precision: str):
    dtype = PRECISIONS[precision]
    return torch.autocast(device, dtype=dtype) if dtype is not None else nullcontext()


def model_throughput(preset: str, batch: int, seconds: float, device: str = "cpu",
                     precision: str = "fp32", repeats: int = 3, max_seconds: float = 60.0,
                     threads: Optional[int] = None, seed: int = 0, channels_last: bool = False,
                     model_args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Forward and training-step throughput and peak memory of one configuration.

    Run it in a fresh process (:func:`model_throughput_isolated`) for a meaningful CPU peak: the
    resident high-water mark of a process never goes down.

    Args:
        preset: model size preset (``"small"`` or ``"paper"``), 2 speakers, random weights.
        batch: batch size.
        seconds: audio length of each item.
        device: ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"``, or ``"bf16"`` / ``"fp16"`` autocast over the whole pass (AMP).
        repeats: timed runs (best counts; the warm-up run counts as one).
        max_seconds: stop repeating once the runs of one kind took this long.
        threads: torch CPU threads (default: torch's own choice).
        channels_last: the audio stream's conv weights channels-last, as training stores them.
        model_args: further :class:`LookingToListen` arguments (the recipe's ``lip_size``, ``fusion``, ``audio_bottleneck``, STFT).

    Returns:
        ``forward_audio_s_per_s``, ``train_audio_s_per_s`` (forward + backward), and the peak
        memory of each pass beyond the model and inputs, ``*_peak_mb``.
    """
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = LookingToListen(preset=preset, **(model_args or {})).to(device)
    model.audio_stream.set_channels_last(channels_last)
    wav, visual = random_inputs(model, batch, seconds, device, seed)
    audio = batch * seconds

    def forward(wav, visual):
        with torch.no_grad(), _autocast(device, precision):
            model(wav, visual)

    def train_step(wav, visual):
        with _autocast(device, precision):
            loss = model(wav, visual).float().square().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    # A tiny pass first: libraries load their code and thread pools on first use, which would
    # otherwise count as memory of the measured pass.
    tiny = random_inputs(model, 1, 1 / model.fps, device, seed)
    result: Dict[str, Any] = {"preset": preset, "batch": batch, "seconds": seconds, "precision": precision,
                              "layout": "channels-last" if channels_last else "default",
                              "device": device, "threads": torch.get_num_threads()}
    for name, mode, step in (("forward", model.eval, forward), ("train", model.train, train_step)):
        mode()
        step(*tiny)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        _sync(device)
        base = _memory_bytes(device, peak=False)
        start = time.perf_counter()
        step(wav, visual)  # warm-up, and the pass whose memory peak is measured
        _sync(device)
        first = time.perf_counter() - start
        result[f"{name}_peak_mb"] = max(0, _memory_bytes(device, peak=True) - base) / 2**20
        best = best_time(lambda: step(wav, visual), repeats, device, max_seconds, first=first)
        result[f"{name}_audio_s_per_s"] = audio / best
    return result


def model_throughput_isolated(**kwargs) -> Dict[str, Any]:
    """:func:`model_throughput` in a freshly spawned process (clean memory high-water mark)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(model_throughput, **kwargs).result()


def model_table(presets: Sequence[str], batches: Sequence[int], seconds: float, device: str,
                precisions: Sequence[str], matmul: Dict[str, float], repeats: int, max_seconds: float,
                threads: Optional[int] = None, model_args: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """One row per (preset, batch, precision, conv layout): parameters, counted MACs, throughput,
    memory, and achieved GFLOP/s over the same-run matmul GFLOP/s of that precision. The layouts:
    torch's default and channels-last (what training uses, ``train.py``)."""
    rows = []
    for preset in presets:
        model = LookingToListen(preset=preset, **(model_args or {}))
        params = sum(p.numel() for p in model.parameters())
        macs = count_macs(model, seconds)
        del model
        for batch in batches:
            for precision, channels_last in itertools.product(precisions, (False, True)):
                log.info("model: preset %s, batch %d, %s, channels-last %s", preset, batch, precision, channels_last)
                row = model_throughput_isolated(preset=preset, batch=batch, seconds=seconds, device=device,
                                                precision=precision, repeats=repeats,
                                                max_seconds=max_seconds, threads=threads,
                                                channels_last=channels_last, model_args=model_args)
                row["params_m"] = params / 1e6
                row["gmac_per_audio_s"] = macs["forward"] / 1e9
                row["train_gmac_per_audio_s"] = macs["forward_backward"] / 1e9
                row["gmac_by_module"] = {k: v / 1e9 for k, v in macs["by_module"].items()}
                for name, key in (("forward", "forward"), ("train", "forward_backward")):
                    gflops = 2 * macs[key] / 1e9 * row[f"{name}_audio_s_per_s"]
                    row[f"{name}_gflops"] = gflops
                    row[f"{name}_matmul_ratio"] = gflops / matmul[precision]
                rows.append(row)
    return rows


def alternating_step_times(steps_by_name: Dict[Any, Callable[[], Any]], rounds: int, steps: int,
                           device: str = "cpu") -> Dict[Any, float]:
    """Seconds per call of each function, timed against each other: after one warm-up turn, ``rounds`` turns in
    which each function in turn runs ``steps`` times; each one's time is the median of its turns. Alternating in one
    process keeps all under the same machine load, which best-of-N runs in separate processes on a shared machine
    do not."""
    times: Dict[Any, List[float]] = {name: [] for name in steps_by_name}
    for turn in range(rounds + 1):
        for name, step in steps_by_name.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            if turn:  # turn 0 warms up
                times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def training_step_layouts(preset: str, batch: int, seconds: float, device: str = "cpu", rounds: int = 7,
                          steps: int = 5, seed: int = 0,
                          model_args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Training steps (forward, backward, Adam) with the audio stream's convs in torch's default
    layout and channels-last, timed against each other in this process.

    Both models (the same weights) take ``rounds`` alternating turns of ``steps`` steps each, after
    one warm-up turn (:func:`alternating_step_times`).

    Returns:
        ``default_step_s``, ``channels_last_step_s`` (seconds per step) and their ratio ``speedup``.
    """
    models = {}
    for channels_last in (False, True):
        torch.manual_seed(seed)
        model = LookingToListen(preset=preset, **(model_args or {})).to(device).train()
        model.audio_stream.set_channels_last(channels_last)
        models[channels_last] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    wav, visual = random_inputs(models[False][0], batch, seconds, device, seed)

    def train_step(model, optimizer):
        model(wav, visual).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step_s = alternating_step_times({layout: functools.partial(train_step, *pair) for layout, pair in models.items()},
                                    rounds, steps, device)
    default, fast = step_s[False], step_s[True]
    return {"preset": preset, "batch": batch, "seconds": seconds, "rounds": rounds, "steps": steps,
            "default_step_s": default, "channels_last_step_s": fast, "speedup": default / fast}


def stft_speed(stft: Sequence[int], batch: int, seconds: float, n_src: int = 2, rounds: int = 7, steps: int = 5,
               seed: int = 0) -> Dict[str, Any]:
    """The model's STFT work in a training step, asteroid-filterbanks' convolutions against our FFTs.

    One step: the STFT of ``batch`` mixtures, ``n_src`` masked copies of each back through the iSTFT, and
    the backward pass to the masks. ``Encoder`` / ``Decoder(STFTFB)`` (1-D convolutions with the DFT
    filters) and :class:`~asteroid_avspeech.models.spectral.STFT` (the same transform with ``rfft`` /
    ``irfft``) take ``rounds`` alternating turns of ``steps`` steps after a warm-up turn; each one's step time
    is the median of its turns (:func:`alternating_step_times`).

    Returns:
        ``filterbank_step_s``, ``fft_step_s``, their ratio ``speedup`` and ``max_abs_diff`` of the waveforms.
    """
    from asteroid_filterbanks import STFTFB, Decoder, Encoder
    from scipy.signal import get_window

    from .models.spectral import STFT, synthesis_window

    n_filters, kernel_size, stride = stft
    ours = STFT(n_filters, kernel_size, stride)
    analysis = get_window("hann", kernel_size)
    encoder = Encoder(STFTFB(n_filters, kernel_size, stride, window=analysis))
    decoder = Decoder(STFTFB(n_filters, kernel_size, stride, window=synthesis_window(analysis, stride)))
    gen = torch.Generator().manual_seed(seed)
    time_ = int(round(seconds * ours.sample_rate))
    wav = 0.1 * torch.randn(batch, time_, generator=gen)
    masks = torch.randn(batch * n_src, 2, ours.n_frames(time_), ours.n_freqs, generator=gen)
    right = (ours.n_frames(time_) - 1) * stride + kernel_size - time_ - ours.left_pad

    def filterbank_step():
        spec = encoder(torch.nn.functional.pad(wav[:, None], (ours.left_pad, right)))  # (batch, 2 * freq, frames)
        mask = masks.transpose(-1, -2).reshape(batch * n_src, -1, spec.shape[-1]).requires_grad_(True)
        out = decoder(mask * spec.repeat_interleave(n_src, 0)).reshape(batch * n_src, -1)
        out = out[:, ours.left_pad : ours.left_pad + time_]
        out.square().mean().backward()
        return out

    def fft_step():
        mask = masks.clone().requires_grad_(True)
        out = ours.inverse(mask * ours(wav).repeat_interleave(n_src, 0), time_)
        out.square().mean().backward()
        return out

    diff = (filterbank_step() - fft_step()).abs().max().item()
    step_s = alternating_step_times({"filterbank": filterbank_step, "fft": fft_step}, rounds, steps)
    filterbank, fft = step_s["filterbank"], step_s["fft"]
    return {"stft": list(stft), "batch": batch, "seconds": seconds, "n_src": n_src, "rounds": rounds,
            "steps": steps, "filterbank_step_s": filterbank, "fft_step_s": fft, "speedup": filterbank / fft,
            "max_abs_diff": diff}


# ---------------------------------------------------------------------------- fast inference
def calibrate_batchnorm(model: LookingToListen, wav: torch.Tensor, visual: torch.Tensor) -> None:
    """Set the BatchNorm statistics of a random model from one batch (training-mode pass).

    Without this, a random model's activations shrink layer after layer (default running
    statistics) and its output is ~1e-5 of the input: a poor stand-in for a trained model
    when comparing precisions.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one pass sets the statistics
        norm.train()  # only the norms: the model itself stays in eval mode
    with torch.no_grad():
        model(wav, visual)
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def output_si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """Worst SI-SDR (dB) of ``estimate`` against ``reference``, both ``(batch, n_src, time)``.

    Both are first scaled by the reference's RMS, so asteroid's ``eps`` does not cap the value
    for quiet outputs.
    """
    scale = reference.float().pow(2).mean().sqrt().clamp(min=1e-12)
    est = (estimate.float() / scale).flatten(0, 1)
    ref = (reference.float() / scale).flatten(0, 1)
    return float(-singlesrc_neg_sisdr(est, ref).max())


def runnable_variants(device: str = "cpu") -> Dict[str, Optional[Dict[str, Any]]]:
    """The :data:`INFERENCE_VARIANTS` that ``device`` can run: bf16 becomes fp16 on GPUs without
    bf16, and is left out on CPUs that cannot run it (:func:`cpu_runs_bf16`, logged)."""
    if device == "cpu" and not cpu_runs_bf16():
        log.info("bf16 variants left out: this CPU cannot run the model in bf16 (no AVX-512)")
        return {name: kw for name, kw in INFERENCE_VARIANTS.items() if kw is None or kw["precision"] != "bf16"}
    bf16 = "bf16" if device != "cuda" or torch.cuda.is_bf16_supported() else "fp16"
    return {name: (None if kw is None else {**kw, "precision": bf16 if kw["precision"] == "bf16" else "fp32"})
            for name, kw in INFERENCE_VARIANTS.items()}


def inference_variants(preset: str, seconds: float, device: str = "cpu", repeats: int = 3,
                       wav: Optional[torch.Tensor] = None, with_compile: bool = False,
                       seed: int = 0, model_args: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Plain fp32 eager inference against the :data:`INFERENCE_VARIANTS` ``device`` can run (batch 1).

    The model has random weights with calibrated BatchNorm statistics; runs are interleaved
    (variant after variant, ``repeats`` rounds) so that machine load hits them alike.

    Args:
        preset: model size preset.
        seconds: audio length (ignored when ``wav`` is given).
        device: ``"cpu"`` or ``"cuda"``.
        repeats: rounds of timed runs; the best of each variant counts.
        wav: mixture ``(1, time)`` (e.g. real speech); default: Gaussian noise.
        with_compile: also time ``torch.compile`` of the fastest context (compile time reported).
        model_args: further :class:`LookingToListen` arguments (the recipe's ``lip_size``, ``fusion``, ``audio_bottleneck``, STFT).

    Returns:
        One dict per variant: ``audio_s_per_s``, ``speedup`` over plain, ``output_si_sdr_db``
        (its output against the plain output, worst speaker; ``inf`` when identical).
    """
    torch.manual_seed(seed)
    model = LookingToListen(preset=preset, **(model_args or {})).to(device)
    if wav is not None:
        seconds = wav.shape[-1] / model.sample_rate
    noise, visual = random_inputs(model, 1, seconds, device, seed)
    wav = noise if wav is None else wav.to(device)
    calibrate_batchnorm(model, wav, visual)
    variants = runnable_variants(device)

    def run(kwargs):
        if kwargs is None:
            with torch.no_grad():
                return model(wav, visual)
        with inference_context(model, **kwargs):
            return model(wav, visual)

    outputs = {name: run(kw) for name, kw in variants.items()}  # warm-up
    best = {name: float("inf") for name in variants}
    for _ in range(max(repeats, 1)):
        for name, kw in variants.items():
            best[name] = min(best[name], best_time(lambda: run(kw), 1, device))
    if with_compile:
        # One context for all calls: entering it again installs a new estimate_masks wrapper,
        # which would make torch.compile recompile.
        fastest = next(name for name in ("bf16 autocast + channels-last", "fp32 + channels-last") if name in variants)
        name = f"{fastest} + torch.compile"
        variants[name] = variants[fastest]
        compiled = torch.compile(model)
        with inference_context(model, **variants[name]):
            start = time.perf_counter()
            outputs[name] = compiled(wav, visual)
            compile_s = time.perf_counter() - start
            best[name] = best_time(lambda: compiled(wav, visual), repeats, device)
    rows = []
    for name, kw in variants.items():
        row = {"preset": preset, "variant": name, "precision": "fp32" if kw is None else kw["precision"],
               "seconds": seconds, "audio_s_per_s": seconds / best[name],
               "speedup": best["plain fp32"] / best[name],
               "output_si_sdr_db": output_si_sdr(outputs[name], outputs["plain fp32"])}
        if "compile" in name:
            row["compile_s"] = compile_s
        rows.append(row)
    return rows


def add_inference_gflops(rows: List[Dict[str, Any]], gmac_per_audio_s: Dict[str, float],
                         matmul: Dict[str, float]) -> None:
    """Add ``gflops`` and ``matmul_ratio`` (over the same-precision matmul) to each row."""
    for row in rows:
        row["gflops"] = 2 * gmac_per_audio_s[row["preset"]] * row["audio_s_per_s"]
        row["matmul_ratio"] = row["gflops"] / matmul[row["precision"]]


# ---------------------------------------------------------------------------- data preparation
def stage0_speed(workdir: Path, n_clips: int, seconds: float = 3.0, size: int = 256,
                 seed: int = 0) -> Dict[str, Any]:
    """Clips per second of the generated corpus (stage 0), one worker process.

    Two speakers; a first clip each is generated untimed (espeak-ng start, face alignment), then
    ``n_clips`` more are timed (the generator resumes: finished clips are kept).

    Returns:
        ``clips_per_s``, ``video_s_per_s`` and ``corpus`` (the folder, reused by stage 2).
    """
    from .data.synthetic.corpus import CorpusConfig, generate_corpus

    corpus = Path(workdir) / "corpus"
    cfg = CorpusConfig(seconds=seconds, size=size, cache_dir=str(Path(workdir) / "cache"))
    n_speakers = len(BENCHMARK_FACES)
    per_speaker = max(1, math.ceil(n_clips / n_speakers))
    generate_corpus(corpus, n_speakers, 1, seed, cfg, faces=BENCHMARK_FACES)
    start = time.perf_counter()
    jobs = generate_corpus(corpus, n_speakers, 1 + per_speaker, seed, cfg, faces=BENCHMARK_FACES)
    elapsed = time.perf_counter() - start
    timed = n_speakers * per_speaker
    return {"clips": timed, "clip_seconds": seconds, "size": size, "seconds": elapsed,
            "clips_per_s": timed / elapsed, "video_s_per_s": timed * seconds / elapsed,
            "corpus": str(corpus), "clip_ids": [job.clip_id for job in jobs]}


def stage2_speed(corpus: Path, clip_ids: Sequence[str], detect_every: int = 10, lip_size: int = LIP_SIZE,
                 repeats: int = 1) -> Dict[str, Any]:
    """Stage 2 (decode, keyframe tracking, lip crops) against MTCNN on every frame, same clips.

    Times are CPU seconds of this process (see :class:`~asteroid_avspeech.video.benchmark.TrackingBenchmark`).

    Returns:
        ``clips_per_s`` (tracked), ``every_frame_clips_per_s``, ``speedup`` and the mouth-centre
        error of tracking against every-frame detection (pixels).
    """
    from .data import layout
    from .video.benchmark import benchmark_tracking

    clips = []
    for clip_id in clip_ids:
        meta = json.loads(layout.meta_path(corpus, clip_id).read_text())
        clips.append((layout.clip_path(corpus, clip_id), (meta["x"], meta["y"])))
    bench = benchmark_tracking(clips, detect_every=detect_every, lip_size=lip_size, repeats=repeats)
    return {**bench.as_dict(),
            "clips_per_s": bench.n_clips / bench.seconds_tracked,
            "every_frame_clips_per_s": bench.n_clips / bench.seconds_every_frame}


def detector_layouts(corpus: Path, clip_ids: Sequence[str], detect_every: int = 10, rounds: int = 7,
                     steps: int = 1) -> Dict[str, Any]:
    """MTCNN on stage 2's keyframes of ``clip_ids`` with its weights in torch's default layout and
    channels-last (:class:`~asteroid_avspeech.video.faces.FaceDetector`'s default), timed against each
    other in this process (:func:`alternating_step_times`).

    Returns:
        ``keyframes``, ``default_s`` and ``channels_last_s`` (seconds for all keyframes), ``speedup``, and
        ``max_box_diff_px``: the largest difference between the boxes both found (``inf`` if they found
        different faces).
    """
    from .data import layout
    from .video.decode import read_frames
    from .video.faces import FaceDetector

    frames = np.concatenate([read_frames(layout.clip_path(corpus, c))[::detect_every] for c in clip_ids])
    detectors = {channels_last: FaceDetector(channels_last=channels_last) for channels_last in (False, True)}
    seconds = alternating_step_times({key: functools.partial(detector, frames) for key, detector in detectors.items()},
                                     rounds, steps)
    found = {key: detector(frames) for key, detector in detectors.items()}
    diffs = [np.abs(a.boxes - b.boxes).max(initial=0.0) if a.boxes.shape == b.boxes.shape else math.inf
             for a, b in zip(found[False], found[True])]
    return {"keyframes": len(frames), "default_s": seconds[False], "channels_last_s": seconds[True],
            "speedup": seconds[False] / seconds[True], "max_box_diff_px": float(max(diffs))}


# ---------------------------------------------------------------------------- inference
def inference_rtf(model: LookingToListen, video: Path, duration: float, precision: str = "fp32",
                  device: str = "cpu") -> Dict[str, Any]:
    """Real-time factor of video in -> one track per face out (face tracking included).

    Calls :func:`asteroid_avspeech.separate.separate_video` at ``precision``.
    RTF = processing seconds / video seconds (below 1: faster than real time).

    Returns:
        ``precision``, ``video``, ``video_seconds``, ``faces``, ``seconds`` and ``rtf``.
    """
    from .separate import separate_video

    _sync(device)
    start = time.perf_counter()
    tracks = separate_video(model, video, device=device, precision=precision, progress=False)
    _sync(device)
    elapsed = time.perf_counter() - start
    return {"precision": precision, "video": Path(video).name, "video_seconds": duration,
            "faces": len(tracks), "seconds": elapsed, "rtf": elapsed / duration}


# ---------------------------------------------------------------------------- precision check
def precision_delta(model: LookingToListen, dataset, precision: str = "bf16", n_items: Optional[int] = None,
                    device: str = "cpu") -> Dict[str, Any]:
    """SI-SDR on a test set of the plain fp32 model against ``inference_context(precision)``.

    Args:
        model: a trained LookingToListen.
        dataset: items ``(mixture (time,), sources (n_src, time), visual)`` (an AVSpeechDataset).
        precision: the optimised precision.
        n_items: evaluate only the first ``n_items``.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        Mean SI-SDR (dB, in face order) of both, ``delta_db`` (optimised minus fp32), the largest
        per-mixture ``|delta|`` and the worst SI-SDR of the optimised output against the fp32 one.
    """
    from tqdm import tqdm

    model = model.to(device).eval()
    n_items = len(dataset) if n_items is None else min(n_items, len(dataset))
    if n_items == 0:
        raise ValueError("The test set is empty: run stage 3 (local/make_mixtures.py) first.")
    plain, fast, agreement = [], [], []
    for idx in tqdm(range(n_items), desc=f"fp32 vs {precision}", unit="mix"):
        mixture, sources, visual = dataset[idx]
        wav = mixture[None].to(device)
        vis = torch.as_tensor(visual)[None].to(device)
        est32 = model.forward_wav(wav, vis)[0].cpu()
        with inference_context(model, precision=precision):
            est = model(wav, vis)[0].cpu()
        plain.append(float(-singlesrc_neg_sisdr(est32, sources).mean()))
        fast.append(float(-singlesrc_neg_sisdr(est, sources).mean()))
        agreement.append(output_si_sdr(est[None], est32[None]))
    deltas = [b - a for a, b in zip(plain, fast)]
    return {"n_items": n_items, "precision": precision, "si_sdr_fp32": sum(plain) / n_items,
            f"si_sdr_{precision}": sum(fast) / n_items, "delta_db": sum(deltas) / n_items,
            "max_abs_delta_db": max(abs(d) for d in deltas), "min_output_si_sdr_db": min(agreement)}


# ---------------------------------------------------------------------------- the whole run
def run_benchmark(device: str = "cpu", quick: bool = False, presets: Sequence[str] = ("small", "paper"),
                  batch_size: int = 4, segment: float = 2.0, clip_seconds: float = 3.0,
                  detect_every: int = 10, model_args: Optional[Dict[str, Any]] = None, repeats: Optional[int] = None,
                  threads: Optional[int] = None, with_compile: bool = False,
                  workdir: Optional[Path] = None) -> Dict[str, Any]:
    """Everything, in one run: machine, matmul rate, model table, fast inference, data prep, RTF.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (CUDA adds AMP rows; data prep stays on CPU).
        quick: CI-sized run (short inputs, batch 2, one repeat, one clip): checks that every
            part runs, its numbers are not representative.
        presets: model presets to measure.
        batch_size: the training batch size (conf.yml ``training.batch_size``); batch 1 is always measured.
        segment: audio seconds per item of the model rows (conf.yml ``training.segment``).
        clip_seconds: clip length for stage 0/2, fast inference and the RTF.
        detect_every: stage-2 keyframe interval (conf.yml ``visual.detect_every``).
        model_args: :class:`LookingToListen` arguments of every model measured besides its preset
            (``local/benchmark.py`` passes the recipe's ``lip_size``, ``fusion``, ``audio_bottleneck``,
            ``n_filters`` / ``kernel_size`` / ``stride``, ``mask_domain`` and ``audio_only_head``); those left out
            are the model's defaults (the paper's). Stage 2 crops lips of its ``lip_size``; the STFT row times
            its STFT.
        repeats: timed runs per measurement (default 3, quick 1).
        threads: torch CPU threads (default: torch's choice; quick: 1).
        with_compile: also time ``torch.compile`` in the fast-inference table.
        workdir: folder for the generated clips (default: a temporary folder, removed).
    """
    if quick:
        batch_size, segment, clip_seconds = min(batch_size, 2), 0.2, 1.0
        # One thread: on a busy machine two threads of tiny ops wait for each other at every
        # OpenMP barrier (seen here: 100x slower), and --quick only checks that all runs.
        threads = threads or 1
    if threads:
        torch.set_num_threads(threads)
    repeats = repeats or (1 if quick else 3)
    model_args = dict(model_args or {})
    max_seconds = 5.0 if quick else 120.0
    results: Dict[str, Any] = {"machine": machine_info(device),
                               "config": dict(quick=quick, presets=list(presets), batch_size=batch_size,
                                              segment=segment, clip_seconds=clip_seconds,
                                              detect_every=detect_every, model_args=model_args,
                                              repeats=repeats)}
    lip_size = model_args.get("lip_size", LIP_SIZE)
    stft = [model_args.get(key, size) for key, size in zip(("n_filters", "kernel_size", "stride"), PAPER_STFT)]
    matmul_size = 1024 if quick else 4096
    # bf16 only where the model runs in it: an AVX2 CPU emulates a bf16 product (25x slower than fp32 here)
    runs_bf16 = device != "cpu" or cpu_runs_bf16()
    matmul_precisions = ("fp32",) + (("bf16",) if runs_bf16 else ()) + (("fp16",) if device == "cuda" else ())
    results["matmul_gflops"] = {p: matmul_gflops(device, PRECISIONS[p] or torch.float32, matmul_size)
                                for p in matmul_precisions}
    log.info("matmul GFLOP/s: %s", results["matmul_gflops"])
    precisions = ("fp32", "bf16") if device == "cuda" else ("fp32",)
    results["model"] = model_table(presets, sorted({1, batch_size}), segment, device, precisions,
                                   results["matmul_gflops"], repeats, max_seconds, threads, model_args)
    log.info("training step, default layout against channels-last (preset small)")
    results["train_layouts"] = training_step_layouts("small", batch_size, segment, device,
                                                     rounds=1 if quick else 7, steps=1 if quick else 5,
                                                     model_args=model_args)
    log.info("STFT, iSTFT and backward: asteroid-filterbanks' convolutions against FFTs")
    results["stft"] = stft_speed(stft, batch_size, segment, rounds=1 if quick else 7, steps=1 if quick else 5)

    with tempfile.TemporaryDirectory() if workdir is None else nullcontext(workdir) as tmp:
        log.info("stage 0 and stage 2")
        stage0 = stage0_speed(Path(tmp), n_clips=2 if quick else 4, seconds=clip_seconds)
        clip_ids = stage0.pop("clip_ids")
        stage2 = stage2_speed(Path(stage0["corpus"]), clip_ids[: 1 if quick else 4], detect_every, lip_size)
        log.info("stage 2's MTCNN, default layout against channels-last")
        detector = detector_layouts(Path(stage0["corpus"]), clip_ids[: 1 if quick else 4], detect_every,
                                    rounds=1 if quick else 7)
        results["data_prep"] = {"stage0": stage0, "stage2": stage2, "detector_layouts": detector}
        speech = _speech_mixture(Path(stage0["corpus"]), clip_ids[:2])
        if quick:  # a segment from the middle (speech starts after a silence): checked, not timed
            half = int(segment / clip_seconds * speech.shape[-1]) // 2
            middle = speech.shape[-1] // 2
            speech = speech[:, middle - half : middle + half]

        gmacs = {row["preset"]: row["gmac_per_audio_s"] for row in results["model"]}
        results["inference"] = []
        for preset in presets:
            log.info("fast inference: preset %s", preset)
            rows = inference_variants(preset, clip_seconds, device, repeats, wav=speech,
                                      with_compile=with_compile and preset == "paper", model_args=model_args)
            add_inference_gflops(rows, gmacs, results["matmul_gflops"])
            results["inference"] += rows

        from .data import layout

        rtf_model = LookingToListen(preset="small", **model_args).to(device).eval()
        video = layout.clip_path(Path(stage0["corpus"]), clip_ids[0])
        inference_rtf(rtf_model, video, clip_seconds, "fp32", device)  # warm-up (detector, first calls)
        rtf_precisions = ("fp32", "bf16") if runs_bf16 else ("fp32",)
        results["inference_rtf"] = [inference_rtf(rtf_model, video, clip_seconds, precision, device)
                                    for precision in rtf_precisions]
    results["machine"]["load_average_1min_end"] = machine_info(device)["load_average_1min"]
    return results


def _speech_mixture(corpus: Path, clip_ids: Sequence[str]) -> torch.Tensor:
    """Sum of the reference wavs of ``clip_ids`` (generated speech), ``(1, time)`` float32."""
    import soundfile as sf

    from .data import layout

    wavs = [sf.read(layout.reference_wav_path(corpus, c), dtype="float32")[0] for c in clip_ids]
    length = min(len(w) for w in wavs)
    return torch.from_numpy(sum(w[:length] for w in wavs))[None]


# ---------------------------------------------------------------------------- report
def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(results: Dict[str, Any]) -> str:
    """The results of :func:`run_benchmark` as markdown tables."""
    m, mm = results["machine"], results["matmul_gflops"]
    where = m.get("gpu") or m["cpu"]
    out = [f"Machine: {where} ({m['cpu_cores']} cores, {m['torch_threads']} torch threads, "
           f"AVX-512 BF16: {m['cpu_bf16']}, runs bf16: {m.get('cpu_runs_bf16')}), "
           f"torch {m['torch']}, device {m['device']}; "
           f"load average {m['load_average_1min']} at start, {m.get('load_average_1min_end')} at end. "
           "Matrix product: " + ", ".join(f"{gflops:.0f} GFLOP/s {p}" for p, gflops in mm.items()) + "."
           + (" (--quick: sizes too small to be representative)" if results["config"]["quick"] else ""), ""]
    seg = results["config"]["segment"]
    out.append(_table(
        ["preset", "params (M)", "GMAC / s audio", "batch", "precision", "conv layout", "forward (s audio/s)",
         "forward GFLOP/s (x matmul)", "fwd+bwd (s audio/s)", "fwd+bwd GFLOP/s (x matmul)",
         "peak MB forward", "peak MB fwd+bwd"],
        [[r["preset"], r["params_m"], r["gmac_per_audio_s"], r["batch"], r["precision"], r["layout"],
          r["forward_audio_s_per_s"], f"{r['forward_gflops']:.0f} ({r['forward_matmul_ratio']:.2f})",
          r["train_audio_s_per_s"], f"{r['train_gflops']:.0f} ({r['train_matmul_ratio']:.2f})",
          f"{r['forward_peak_mb']:.0f}", f"{r['train_peak_mb']:.0f}"] for r in results["model"]]))
    model_args = ", ".join(f"{key}={value}" for key, value in results["config"]["model_args"].items())
    out += ["", f"Model rows: {seg:g} s items, random weights, model arguments besides the preset: "
            f"{model_args or 'the defaults (the paper)'}; fwd+bwd = one training step without the optimizer; "
            "peak MB beyond the model and inputs.", ""]
    t = results["train_layouts"]
    out += [_table(["training step (fwd + bwd + Adam)", "default layout (s)", "channels-last (s)", "speed-up"],
                   [[f"{t['preset']}, batch {t['batch']}, {t['seconds']:g} s", f"{t['default_step_s']:.3f}",
                     f"{t['channels_last_step_s']:.3f}", f"{t['speedup']:.2f}x"]]),
            "", f"Median of {t['rounds']} alternating turns of {t['steps']} steps in one process "
            "(training stores the audio stream channels-last).", ""]
    f = results["stft"]
    out += [_table(["STFT + iSTFT + backward", "asteroid-filterbanks convs (s)", "FFTs (s)", "speed-up",
                    "max difference"],
                   [[f"{'/'.join(map(str, f['stft']))}, batch {f['batch']} x {f['n_src']} sources, {f['seconds']:g} s",
                     f"{f['filterbank_step_s'] * 1e3:.1f} ms", f"{f['fft_step_s'] * 1e3:.1f} ms", f"{f['speedup']:.2f}x",
                     f"{f['max_abs_diff']:.1e}"]]),
            "", f"Median of {f['rounds']} alternating turns of {f['steps']} steps in one process (the model computes "
            "the filterbank's transform with FFTs).", ""]
    out.append(_table(
        ["preset", "inference variant", "s audio/s", "speed-up", "GFLOP/s (x matmul)", "SI-SDR vs plain (dB)"],
        [[r["preset"], r["variant"] + (f" (compile {r['compile_s']:.0f} s)" if "compile_s" in r else ""),
          r["audio_s_per_s"], f"{r['speedup']:.2f}x", f"{r['gflops']:.0f} ({r['matmul_ratio']:.2f})",
          f"{r['output_si_sdr_db']:.1f}"] for r in results["inference"]]))
    s0, s2 = results["data_prep"]["stage0"], results["data_prep"]["stage2"]
    out += ["", _table(
        ["data preparation", "clips/s", "note"],
        [["stage 0 (generate)", s0["clips_per_s"], f"{s0['clip_seconds']:g} s {s0['size']}px clips, 1 worker"],
         [f"stage 2 (MTCNN every {s2['detect_every']} frames + tracking)", s2["clips_per_s"],
          f"{s2['speedup']:.1f}x faster than MTCNN on every frame; mouth error "
          f"{s2['mouth_error_mean_px']:.2f} px mean"],
         ["stage 2, MTCNN on every frame", s2["every_frame_clips_per_s"], "CPU seconds"]])]
    d = results["data_prep"]["detector_layouts"]
    out += ["", _table(["stage 2 keyframe detection (MTCNN)", "default layout (s)", "channels-last (s)", "speed-up",
                        "max box difference"],
                       [[f"{d['keyframes']} keyframes", f"{d['default_s']:.3f}", f"{d['channels_last_s']:.3f}",
                         f"{d['speedup']:.2f}x", f"{d['max_box_diff_px']:.1e} px"]]),
            "", "Median of alternating turns in one process (the detector keeps MTCNN channels-last)."]
    rtf_rows = [[r["precision"], r["rtf"], f"{r['video_seconds']:g} s video, {r['faces']} face(s), preset small"]
                for r in results["inference_rtf"]]
    out += ["", _table(["video -> tracks", "real-time factor", "note"], rtf_rows)]
    return "\n".join(out) + "\n"
