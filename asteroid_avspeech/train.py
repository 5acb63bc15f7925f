"""Stage 4: train a LookingToListen model with asteroid's System (PyTorch Lightning).

Everything comes from the recipe configuration (``conf.yml`` sections). The experiment
directory receives, as in asteroid's recipes: ``conf.yml`` (the resolved configuration),
``checkpoints/`` (the top 5 by validation loss, and ``last.ckpt`` after every validation, used to
resume after an interruption), ``best_k_models.json``, ``best_model.pth`` (``serialize()`` + dataset
infos, loadable with ``torch.load(weights_only=True)`` and ``BaseModel.from_pretrained``; which
weights it holds is ``training.export_weights``), ``logs/`` (CSV, and TensorBoard when installed) and
``training_curve.png``.
"""
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from asteroid.engine.optimizers import make_optimizer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader

from .config import Conf, ConfigError, check_positive_int_or_null, dump_conf, stft_sizes
from .data.dataset import AVSpeechDataset
from .io_utils import atomic_path
from .losses import make_loss
from .models import PRESETS, LookingToListen
from .models.fast_inference import resolve_precision
from .schedule import (
    FitScheduleToTimeCap,
    log_stop,
    make_scheduler,
    stop_conditions,
    time_cap_minutes,
    validation_interval,
)
from .system import AVSystem

log = logging.getLogger(__name__)


def build_model(conf: Conf) -> LookingToListen:
    """The model described by the ``model``, ``visual`` and ``mixtures`` sections.

    ``model_sizes`` (a mapping, may be empty) overrides size arguments of the preset, e.g.
    ``{lstm_hidden: 300, audio_channels: 24}``.

    Raises:
        ConfigError: ``model_sizes`` names something that is not a size of the preset.
    """
    sizes = dict(conf["model"].get("model_sizes") or {})
    valid = set(PRESETS.get(conf["model"]["preset"], sizes))  # an unknown preset fails in the model
    if set(sizes) - valid:
        raise ConfigError(f"model_sizes: unknown size(s) {sorted(set(sizes) - valid)}; valid: {sorted(valid)}.")
    sizes.setdefault("visual_kind", conf["visual"]["visual_input"])
    n_filters, kernel_size, stride = stft_sizes(conf)
    return LookingToListen(
        n_src=conf["mixtures"]["n_src"],
        preset=conf["model"]["preset"],
        use_visual=conf["model"]["use_visual"],
        mask_domain=conf["model"]["mask_domain"],
        fusion=conf["model"]["fusion"],
        audio_bottleneck=conf["model"]["audio_bottleneck"],
        audio_only_head=conf["model"]["audio_only_head"],
        post_filter=conf["model"]["post_filter"],
        n_filters=n_filters,
        kernel_size=kernel_size,
        stride=stride,
        sample_rate=conf["data"]["sample_rate"],
        fps=conf["data"]["fps"],
        lip_size=conf["visual"]["lip_size"],
        lip_scale=conf["visual"]["lip_scale"],
        **sizes,
    )


def build_datasets(conf: Conf) -> Tuple[AVSpeechDataset, AVSpeechDataset]:
    """Training set (on-the-fly mixing) and validation set (fixed manifest)."""
    common = dict(
        mixtures_dir=Path(conf["data"]["data_dir"]) / "mixtures",
        n_src=conf["mixtures"]["n_src"],
        visual=conf["visual"]["visual_input"],
        sample_rate=conf["data"]["sample_rate"],
        fps=conf["data"]["fps"],
    )
    # seed=None: each epoch draws new mixtures from torch's generator, which
    # pl.seed_everything(workers=True) makes reproducible (also with persistent workers).
    train = AVSpeechDataset(split="train", segment=conf["training"]["segment"],
                            snr_range=conf["mixtures"]["snr_range"],
                            speeds=conf["training"]["speed_perturbation"], seed=None, **common)
    # validation mixtures are cut to the training segment so that batches have one length
    val = AVSpeechDataset(split="val", condition=f"{conf['mixtures']['n_src']}S_clean",
                          segment=conf["training"]["segment"], **common)
    for name, dataset in (("train", train), ("val", val)):
        if len(dataset) == 0:
            raise ValueError(f"The {name} split is empty: rerun stage 3 (local/make_mixtures.py) "
                             f"with more speakers or other split fractions.")
    return train, val


#: Lightning's DDP, allowing parameters without a gradient in a step: with ``audio_only_head`` a batch
#: with no faceless item leaves the audio-only mask layer unused (and one without faces, the per-face one).
DDP_STRATEGY = "ddp_find_unused_parameters_true"


def trainer_devices(cpu_processes: int = 1) -> Dict[str, Any]:
    """Lightning accelerator settings: every visible GPU (DDP when several), else the CPU.

    GPU ids asked for (``CUDA_VISIBLE_DEVICES``, set by ``run.sh --id``) where torch sees no GPU
    raise :class:`ConfigError` rather than train on the CPU for hours unnoticed.

    Without a GPU, ``cpu_processes > 1`` trains with Lightning's DDP on the CPU (gloo), each
    process on its own batches with ``cores // cpu_processes`` threads: this model's ops
    parallelise poorly over threads, so processes use the cores better.
    """
    n_gpus = torch.cuda.device_count()
    asked = [i.strip() for i in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if i.strip() not in ("", "-1")]
    if asked and n_gpus == 0:
        raise ConfigError(
            f"GPU ids {','.join(asked)} were asked for (run.sh --id, or CUDA_VISIBLE_DEVICES) but torch sees no GPU: "
            "check the driver (nvidia-smi), or leave --id empty to train on the CPU."
        )
    if 0 < n_gpus < len(asked):
        log.warning("GPU ids %s were asked for but torch sees only %d GPU(s): training on those.", ",".join(asked), n_gpus)
    if n_gpus == 0:
        if cpu_processes > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // cpu_processes))
            return dict(accelerator="cpu", devices=cpu_processes, strategy=DDP_STRATEGY)
        return dict(accelerator="cpu", devices=1)
    return dict(accelerator="gpu", devices=n_gpus, strategy=DDP_STRATEGY if n_gpus > 1 else "auto")


#: ``training.precision`` -> Lightning's ``precision`` (mixed: weights and optimizer in float32).
LIGHTNING_PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}


#: ``training.export_weights``: the weights ``best_model.pth`` holds, those at the end of training
#: (where the cosine schedule reaches 0) or those of the best validation loss (asteroid's recipes).
EXPORT_WEIGHTS = ("final", "best_val")


def checkpoint_callbacks(checkpoint_dir: Path) -> Tuple[ModelCheckpoint, ModelCheckpoint]:
    """The 5 best checkpoints by validation loss, and ``last.ckpt`` rewritten after every validation.

    Lightning's own ``save_last`` refreshes ``last.ckpt`` only when a top-k checkpoint is saved, so
    an interrupted run would resume from its last improvement, up to ``early_stop_patience``
    validations back: the second callback keeps the latest state.
    """
    best_k = ModelCheckpoint(dirpath=checkpoint_dir, monitor="val_loss", mode="min", save_top_k=5,
                             verbose=False)
    latest = ModelCheckpoint(dirpath=checkpoint_dir, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False, verbose=False)
    return best_k, latest


def early_stopping(patience: Optional[int]) -> List[EarlyStopping]:
    """Lightning's early stopping on the validation loss after ``patience`` validations without
    improvement, or none for ``patience=None`` (train to ``max_steps``, where the cosine ends).

    Raises:
        ConfigError: ``patience`` is neither None nor a positive integer.
    """
    check_positive_int_or_null("early_stop_patience", patience, null_means="no early stopping")
    if patience is None:
        return []
    return [EarlyStopping(monitor="val_loss", mode="min", patience=patience)]


def fit_resumable(trainer: pl.Trainer, system: pl.LightningModule, last: Path) -> None:
    """``trainer.fit``, resumed from ``last`` when it exists, then the final state saved to ``last``.

    Training usually ends between two validations (``max_steps``, the time cap), after the last
    checkpoint: saving the end too means a rerun finds the run finished instead of training the
    last steps again, and that nothing trained is lost.
    """
    if last.is_file():
        log.info("Resuming from %s", last)
    trainer.fit(system, ckpt_path=last if last.is_file() else None)
    trainer.save_checkpoint(last)  # every DDP process calls it; rank 0 writes


def trained_seconds(last: Path) -> float:
    """Training seconds recorded in the checkpoint ``last`` (Lightning's Timer), 0 without one."""
    if not last.is_file():
        return 0.0
    state = torch.load(last, map_location="cpu", weights_only=False)  # our own Lightning checkpoint
    return float(state.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {}).get("train", 0.0))


def train(conf: Conf, exp_dir: Path, recipe_start: Optional[float] = None) -> Path:
    """Train (or resume) the experiment in ``exp_dir``; return the path of ``best_model.pth``.

    ``recipe_start``: when ``run.sh`` started (Unix seconds); training then also ends early enough
    for the recipe to finish within ``recipe_minutes`` (:func:`~asteroid_avspeech.schedule.time_cap_minutes`).
    """
    tr = conf["training"]
    if tr["export_weights"] not in EXPORT_WEIGHTS:
        raise ConfigError(f"Unknown export_weights {tr['export_weights']!r}; valid: {', '.join(EXPORT_WEIGHTS)}.")
    devices = trainer_devices(tr["cpu_processes"])
    try:  # mixed precision autocasts the mask network only (models/spectral.py: float32 STFTs)
        precision = resolve_precision(tr["precision"], "cuda" if devices["accelerator"] == "gpu" else "cpu")
    except ValueError as err:
        raise ConfigError(f"training.precision: {err}") from err
    exp_dir = Path(exp_dir)
    last = exp_dir / "checkpoints" / "last.ckpt"
    minutes = time_cap_minutes(tr, recipe_start, time.time(), trained_seconds(last))
    exp_dir.mkdir(parents=True, exist_ok=True)
    dump_conf(conf, exp_dir / "conf.yml")
    pl.seed_everything(conf["corpus"]["seed"], workers=True)

    train_set, val_set = build_datasets(conf)
    loader_args = dict(batch_size=tr["batch_size"], num_workers=tr["num_workers"],
                       persistent_workers=tr["num_workers"] > 0)
    train_loader = DataLoader(train_set, shuffle=True, drop_last=True, **loader_args)
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)

    model = build_model(conf)
    # channels-last convs: the same training, faster steps (README, Performance)
    model.audio_stream.set_channels_last(True)
    optim = conf["optim"]
    optimizer = make_optimizer(model.parameters(), optimizer=optim["optimizer"], lr=optim["lr"],
                               weight_decay=optim["weight_decay"])
    # under DDP each process sees 1/devices of the batches (Lightning's DistributedSampler)
    steps_per_epoch = math.ceil(len(train_loader) / devices["devices"])
    max_steps = tr["max_steps"] if tr["max_steps"] is not None else tr["epochs"] * steps_per_epoch
    scheduler = make_scheduler(optimizer, optim, max_steps)
    system = AVSystem(model=model, optimizer=optimizer, loss_func=make_loss(tr["loss"], model, tr["pit_weight"]),
                      train_loader=train_loader, val_loader=val_loader, scheduler=scheduler,
                      config=conf, face_dropout=tr["face_dropout"])

    best_k, latest = checkpoint_callbacks(exp_dir / "checkpoints")
    callbacks = [best_k, latest, *early_stopping(tr["early_stop_patience"])]
    cosine = scheduler["scheduler"].lr_lambdas[0] if isinstance(scheduler, dict) else None  # dict: the cosine
    if cosine is not None and minutes is not None:
        callbacks.append(FitScheduleToTimeCap(cosine))
    trainer = pl.Trainer(
        **stop_conditions(dict(tr, max_minutes=minutes)),
        **validation_interval(tr, optim["lr_schedule"]),
        callbacks=callbacks,
        logger=_loggers(exp_dir),  # asteroid's System needs a logger (never logger=False)
        default_root_dir=exp_dir,
        gradient_clip_val=optim["gradient_clip"],
        deterministic="warn",
        precision=LIGHTNING_PRECISIONS[precision],
        **devices,
    )
    fit_resumable(trainer, system, last)
    if trainer.is_global_zero:
        ended = log_stop(trainer, max_steps, optim["lr"], fitted_to_time=cosine is not None and cosine.progress_floor >= 1.0)
        ended["precision"] = precision
        return export_best_model(best_k, model, train_set, exp_dir, ended, tr["export_weights"])
    return exp_dir / "best_model.pth"


def _loggers(exp_dir: Path) -> list:
    loggers = [pl.loggers.CSVLogger(exp_dir, name="logs")]
    try:
        import tensorboard  # noqa: F401

        loggers.append(pl.loggers.TensorBoardLogger(exp_dir, name="logs"))
    except ImportError:
        pass
    return loggers


def export_best_model(checkpoint: ModelCheckpoint, model: LookingToListen, train_set: AVSpeechDataset,
                      exp_dir: Path, training: Optional[Dict[str, Any]] = None, weights: str = "final") -> Path:
    """Write ``best_k_models.json`` and ``best_model.pth``: the model's weights (``"final"``: as they
    are, at the end of training; ``"best_val"``: those of the checkpoint with the best validation
    loss), the dataset infos and, under ``training``, how training ended
    (:func:`~asteroid_avspeech.schedule.log_stop`) and which weights were exported."""
    best_k = {str(k): float(v) for k, v in checkpoint.best_k_models.items()}
    with atomic_path(exp_dir / "best_k_models.json") as tmp:
        tmp.write_text(json.dumps(best_k, indent=0))
    exported, step = "final", None if training is None else training["steps"]
    if weights == "best_val" and checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        model.load_state_dict({k[len("model."):]: v for k, v in state["state_dict"].items()
                               if k.startswith("model.")})
        exported, step = "best_val", int(state["global_step"])
    package = model.serialize()
    package.update(train_set.get_infos())
    if training is not None:
        package["training"] = {**training, "weights": exported, "weights_step": step}
    with atomic_path(exp_dir / "best_model.pth") as tmp:
        torch.save(package, tmp)
    plot_training_curve(exp_dir)
    return exp_dir / "best_model.pth"


def plot_training_curve(exp_dir: Path) -> Optional[Path]:
    """``training_curve.png`` from the CSV logger's metrics: losses (left), validation SI-SDR (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    files = sorted(Path(exp_dir, "logs").glob("version_*/metrics.csv"))
    if not files:
        return None
    metrics = pd.concat([pd.read_csv(f) for f in files])
    fig, ax = plt.subplots(figsize=(7, 4))
    for column, label in (("loss", "train loss (per step)"), ("val_loss", "validation loss")):
        if column in metrics:
            rows = metrics.dropna(subset=[column])
            ax.plot(rows["step"], rows[column], label=label, marker="." if column == "val_loss" else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if (metrics.get("loss", pd.Series([1.0])).dropna() > 0).all() else "linear")
    handles, labels = ax.get_legend_handles_labels()
    if "val_si_sdr" in metrics:
        rows = metrics.dropna(subset=["val_si_sdr"])
        right = ax.twinx()
        handles += right.plot(rows["step"], rows["val_si_sdr"], color="tab:green", marker=".")
        labels.append("validation SI-SDR (dB)")
        right.set_ylabel("SI-SDR (dB)")
    ax.legend(handles, labels, loc="upper center", fontsize=8)
    fig.tight_layout()
    out = Path(exp_dir) / "training_curve.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out
