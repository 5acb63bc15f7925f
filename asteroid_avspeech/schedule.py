"""How long stage 4 trains and at which learning rate.

``max_steps`` is the length of the run and of the cosine schedule; ``max_minutes`` is a cap,
shortened by :func:`time_cap_minutes` when the whole recipe must end within ``recipe_minutes``.
On a machine too slow to make ``max_steps`` within the cap, :class:`FitScheduleToTimeCap` lets
the clock drive the cosine, so training still ends at the bottom of the decay when the time is up
instead of being cut half-way down it. :func:`log_stop` says how training ended.
"""
import logging
import math
from typing import Any, Dict, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, Timer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from .config import ConfigError, check_positive_int_or_null

log = logging.getLogger(__name__)

LR_SCHEDULES = ("cosine", "plateau")


class WarmupCosine:
    """LR factor per optimizer step: linear warm-up, then a half cosine down to 0 at ``total_steps``.

    The decay's progress is ``max(step progress, progress_floor)``: :class:`FitScheduleToTimeCap`
    raises ``progress_floor`` with the clock on a machine too slow for ``total_steps``. A callable
    object rather than a closure, so that ``LambdaLR.state_dict`` saves both across a resume.
    """

    def __init__(self, warmup_steps: int, total_steps: int):
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.progress_floor = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, max(progress, self.progress_floor))
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, optim: Dict[str, Any], total_steps: int):
    """The ``optim.lr_schedule`` scheduler, in the form asteroid's ``System`` takes.

    ``cosine``: warm-up over ``warmup_steps`` then a cosine decay to 0 at ``total_steps``
    (stepped every batch: a short budget ends at a low learning rate). ``plateau``: halve the
    LR after ``lr_half_patience`` epochs without a better validation loss.
    """
    if optim["lr_schedule"] == "plateau":
        return ReduceLROnPlateau(optimizer, factor=0.5, patience=optim["lr_half_patience"])
    if optim["lr_schedule"] == "cosine":
        schedule = LambdaLR(optimizer, WarmupCosine(optim["warmup_steps"], total_steps))
        return {"scheduler": schedule, "interval": "step"}
    raise ConfigError(f"Unknown lr_schedule {optim['lr_schedule']!r}; valid: {', '.join(LR_SCHEDULES)}.")


def stop_conditions(training: Dict[str, Any]) -> Dict[str, Any]:
    """Lightning's ``max_epochs``/``max_steps``/``max_time`` from the ``training`` section.

    ``max_steps`` (when set) is the length of the run and of the cosine schedule, so ``epochs``
    is then ignored: an epoch limit would cut the schedule short. ``max_minutes`` is a cap.
    """
    steps = training["max_steps"]
    minutes = training["max_minutes"]
    return dict(max_epochs=training["epochs"] if steps is None else -1,
                max_steps=-1 if steps is None else steps,
                max_time=None if minutes is None else dict(minutes=minutes))


#: Least training time (minutes) worth shortening the cap to: a recipe whose earlier stages used up
#: more of ``recipe_minutes`` (a larger corpus, a download) trains for ``max_minutes`` instead.
MIN_TRAINING_MINUTES = 1.0


def time_cap_minutes(training: Dict[str, Any], recipe_start: Optional[float], now: float,
                     trained_s: float = 0.0) -> Optional[float]:
    """Training's time cap (Lightning's ``max_time``, minutes; None: no cap).

    ``max_minutes``, shortened where ``run.sh`` started at ``recipe_start`` (Unix seconds) must end
    within ``recipe_minutes`` with ``eval_minutes`` left for stages 5-6: on a machine whose setup
    and data stages were slow, training gets less time instead of the recipe running over. Both
    cases are logged as warnings: a shortened cap, and a budget the earlier stages already used up
    (then ``max_minutes`` applies).

    Args:
        training: the ``training`` section (``max_minutes``, ``recipe_minutes``, ``eval_minutes``).
        recipe_start: when ``run.sh`` started; None (stage 4 run on its own): no recipe deadline.
        now: the current time (Unix seconds).
        trained_s: training seconds of the run being resumed (Lightning's Timer counts them).
    """
    cap = training["max_minutes"]
    if recipe_start is None or training["recipe_minutes"] is None:
        return cap
    used = (now - recipe_start) / 60
    left = training["recipe_minutes"] - training["eval_minutes"] - used
    if left < MIN_TRAINING_MINUTES:
        log.warning("The stages before training took %.1f min of recipe_minutes %s (%s kept for stages 5-6): "
                    "training for max_minutes (%s) instead; pass --recipe_minutes null to silence this.",
                    used, training["recipe_minutes"], training["eval_minutes"], cap)
        return cap
    deadline_cap = trained_s / 60 + left
    if cap is None or deadline_cap < cap:
        log.warning("Training time cap %.1f min instead of max_minutes %s: %.1f of recipe_minutes %s were used "
                    "before training and %s are kept for stages 5-6.", deadline_cap, cap, used,
                    training["recipe_minutes"], training["eval_minutes"])
        return deadline_cap
    return cap


def validation_interval(training: Dict[str, Any], lr_schedule: str) -> Dict[str, Any]:
    """Lightning's validation interval: every ``val_every_steps`` training steps, or every epoch (null).

    A validation (and the ``last.ckpt`` written after it) costs about as much as 8 training steps
    here; steps rather than epochs also suit a large corpus, whose epochs are long.

    Raises:
        ConfigError: ``val_every_steps`` is neither null nor a positive integer, or it is set with the
            plateau schedule (which halves the learning rate per epoch on the validation loss).
    """
    steps = training["val_every_steps"]
    check_positive_int_or_null("val_every_steps", steps, null_means="every epoch")
    if steps is None:
        return {}
    if lr_schedule == "plateau":
        raise ConfigError("lr_schedule plateau halves the learning rate per epoch on the validation loss: "
                          "set val_every_steps: null (validate every epoch) with it.")
    return dict(val_check_interval=steps, check_val_every_n_epoch=None)


def _timer(trainer: pl.Trainer) -> Optional[Timer]:
    return next((callback for callback in trainer.callbacks if isinstance(callback, Timer)), None)


class FitScheduleToTimeCap(Callback):
    """Let the clock drive a :class:`WarmupCosine` when ``max_minutes`` is too short for ``total_steps``.

    Before every training step, once ``start_share`` of the usable time (``1 - margin`` of the
    cap) has passed, the schedule's ``progress_floor`` becomes the share of the usable time
    elapsed: the decay then follows whichever runs out first, steps or time, and training stops
    when the usable time is up, with the learning rate at 0 and ``margin`` of the cap left for the
    last validation and checkpoints. The floor only rises, so the learning rate still only falls.
    On a machine fast enough for ``total_steps`` the step progress stays ahead of the clock and
    nothing changes (such runs stay deterministic). Rank 0's clock is broadcast, so every DDP
    process keeps the same learning rate.

    Args:
        schedule: the cosine (``make_scheduler(...)["scheduler"].lr_lambdas[0]``).
        start_share: share of the usable time before the clock may drive (start-up is not pace).
        margin: share of the cap kept free after the schedule ends.
    """

    def __init__(self, schedule: WarmupCosine, start_share: float = 0.25, margin: float = 0.03):
        self.schedule = schedule
        self.start_share = start_share
        self.margin = margin
        self.clock_leads = False
        self.timer: Optional[Timer] = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.timer = _timer(trainer)  # looked up once, not on every step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        remaining = None if self.timer is None else self.timer.time_remaining()
        if remaining is None:
            return
        elapsed = self.timer.time_elapsed()
        share = trainer.strategy.broadcast(elapsed / ((1.0 - self.margin) * (elapsed + remaining)), src=0)
        if share < self.start_share or share <= self.schedule.progress_floor:
            return
        if share > trainer.global_step / self.schedule.total_steps and not self.clock_leads:
            self.clock_leads = True
            log.warning("The time cap (%.1f min) is too short for %d steps at %.2f steps/s: the cosine "
                        "schedule now follows the clock and ends at 0 within the cap (~%d steps; raise "
                        "max_minutes (and recipe_minutes) or lower max_steps to train longer).", (elapsed + remaining) / 60,
                        self.schedule.total_steps, trainer.global_step / elapsed, trainer.global_step / share)
        self.schedule.progress_floor = min(1.0, share)  # no effect while the steps lead
        if self.schedule.progress_floor >= 1.0:
            trainer.should_stop = True


def stop_reason(trainer: pl.Trainer, total_steps: int) -> str:
    """Why ``trainer.fit`` returned: ``"step budget"`` (``max_steps``, or ``epochs`` x steps per
    epoch), ``"time cap"`` (``max_minutes``: Lightning's Timer) or else ``"early stopping"``
    (Ctrl+C exits the process)."""
    if trainer.global_step >= total_steps:
        return "step budget"
    timer = _timer(trainer)
    if timer is not None and timer.time_remaining() <= 0:
        return "time cap"
    return "early stopping"


def log_stop(trainer: pl.Trainer, max_steps: int, peak_lr: float, fitted_to_time: bool = False) -> Dict[str, Any]:
    """Say at which step and why training ended; warn when the time cap cut the LR schedule short.

    Args:
        max_steps: the planned steps (``max_steps``, or ``epochs`` x steps per epoch).
        fitted_to_time: :class:`FitScheduleToTimeCap` ran the schedule to its end on the clock.

    Returns:
        ``{steps, max_steps, stopped_by, final_lr_share}`` (plain types, stored in
        ``best_model.pth`` and shown in the results table).
    """
    reason = stop_reason(trainer, max_steps)
    if reason == "early stopping" and fitted_to_time:
        reason = "time cap, schedule fitted"
    lr_share = trainer.optimizers[0].param_groups[0]["lr"] / peak_lr
    message = (f"Training ended at step {trainer.global_step} of {max_steps} by {reason} "
               f"(learning rate at {100 * lr_share:.0f} % of its peak)")
    if reason == "time cap" and lr_share > 0.05:
        log.warning("%s: the schedule did not finish; raise max_minutes or lower max_steps.", message)
    else:
        log.info("%s.", message)
    return dict(steps=int(trainer.global_step), max_steps=int(max_steps), stopped_by=reason,
                final_lr_share=round(float(lr_share), 4))
