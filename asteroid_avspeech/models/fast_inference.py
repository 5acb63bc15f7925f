"""Faster inference for :class:`LookingToListen`: reduced-precision mask network, channels-last convs.

Inside :func:`inference_context` the model runs in eval mode under ``torch.inference_mode()``:

- ``precision="bf16"`` (or ``"fp16"``, CUDA only) runs the mask network
  (``LookingToListen.estimate_masks``: audio stream, visual encoder and stream, BLSTM, FC layers)
  under ``torch.autocast``; its masks are cast back to float32. The STFT, the power-law
  compression, the complex masking and the iSTFT stay in float32, so the output waveform is
  float32 and the only rounding is in the masks. On CPU this pays off with native bf16
  instructions (AVX-512 BF16 or AMX, see :func:`cpu_has_bf16`); without them oneDNN emulates
  bf16 and it can be slower than fp32, and on CPUs without AVX-512 (AVX2 only, e.g. some AMD
  EPYC) it has no bf16 LSTM at all: there bf16 is refused (:func:`cpu_runs_bf16`).
- ``channels_last=True`` stores the audio stream's 2-D conv weights channels-last (NHWC), the
  layout oneDNN (CPU) and cuDNN (tensor cores) convolve fastest; its activations follow.

Everything is undone on exit (training flag, weight layout, the ``estimate_masks`` override),
so the same model object can go on training. Measured gains are in the README's
"Performance" section (``local/benchmark.py``). Not used, because they gave nothing measurable
on CPU: ``torch.compile`` on top of this context (``local/benchmark.py --compile``: same
speed, ~20 s of compilation) and folding BatchNorm into the convs (within timing noise).
"""
import contextlib
import functools
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import torch
from torch import nn

#: Precision name -> autocast dtype (``None``: plain float32, no autocast).
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

#: CPU flags (``/proc/cpuinfo``) that give native bf16 matrix instructions.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX).

    Returns False where ``cpuinfo`` cannot be read (non-Linux systems).
    """
    try:
        flags = cpuinfo.read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


@functools.lru_cache(maxsize=None)
def cpu_runs_bf16() -> bool:
    """True when this CPU runs the model's LSTM under bf16 autocast at all.

    oneDNN has no bf16 LSTM kernel for CPUs without AVX-512 (AVX2 only): there torch fails
    deep in the forward pass ("could not create a primitive descriptor for the LSTM forward
    propagation primitive"). One tiny LSTM step under autocast tells, once per process.
    """
    lstm = nn.LSTM(1, 1)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 1, 1))
    except RuntimeError:
        return False
    return True


def default_precision(device: torch.device) -> str:
    """The fastest precision worth using on ``device``: bf16 where it is native, else fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_precision(precision: str, device: Union[str, torch.device]) -> str:
    """``precision`` for ``device``, ``"auto"`` resolved by :func:`default_precision`.

    Returns:
        One of :data:`PRECISIONS`.

    Raises:
        ValueError: an unknown name, fp16 on a device other than CUDA, or bf16 on a CPU that
            cannot run it (:func:`cpu_runs_bf16`).
    """
    device = torch.device(device)
    if precision == "auto":
        return default_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; valid: auto, {', '.join(PRECISIONS)}.")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32.")
    if precision == "bf16" and device.type == "cpu" and not cpu_runs_bf16():
        raise ValueError("precision bf16: this CPU cannot run the model in bf16 (oneDNN has no bf16 LSTM "
                         "without AVX-512); use fp32, or auto (fp32 on this CPU).")
    return precision


def _autocast_to_float(fn: Callable, device_type: str, dtype: torch.dtype) -> Callable:
    """``fn`` run under ``torch.autocast(device_type, dtype)``, its tensor output cast to float32."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            out = fn(*args, **kwargs)
        return out.float()

    return wrapped


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def inference_context(
    model: nn.Module, precision: str = "bf16", channels_last: bool = True
) -> Iterator[nn.Module]:
    """Run ``model`` (a ``LookingToListen``) for inference, faster, inside this block.

    Example::

        with inference_context(model, precision="bf16"):
            estimates = model(wav, visual)  # (batch, n_src, time), float32

    Args:
        model: a :class:`~asteroid_avspeech.models.LookingToListen` (any preset), on any device.
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` (CUDA only) or ``"auto"``
            (:func:`default_precision`) for the mask network.
        channels_last: store the audio stream's conv weights channels-last (``False``: leave
            their layout as it is; training stores them channels-last).

    Yields:
        The same ``model``, in eval mode. Outputs made in the block are inference tensors
        (no autograd); the model is restored on exit.

    Raises:
        ValueError: unknown precision, fp16 on CPU, bf16 on a CPU that cannot run it, or a
            model without ``estimate_masks`` / ``audio_stream`` (not a LookingToListen).
    """
    if not (hasattr(model, "estimate_masks") and hasattr(model, "audio_stream")):
        raise ValueError(
            f"inference_context needs a LookingToListen model, got {type(model).__name__}."
        )
    device_type = _model_device(model).type
    dtype: Optional[torch.dtype] = PRECISIONS[resolve_precision(precision, device_type)]
    was_training = model.training
    model.eval()
    # Like the override below: only a context that changed the layout changes it back.
    relayout = channels_last and not model.audio_stream.channels_last
    if relayout:
        model.audio_stream.set_channels_last(True)
    # An instance attribute shadows the method for this object only; deleted on exit. In a
    # nested context the outer one's override stays (and its precision wins).
    override = dtype is not None and "estimate_masks" not in vars(model)
    if override:
        model.estimate_masks = _autocast_to_float(model.estimate_masks, device_type, dtype)
    try:
        with torch.inference_mode():
            yield model
    finally:
        if override:
            del model.estimate_masks
        if relayout:
            model.audio_stream.set_channels_last(False)
        model.train(was_training)
