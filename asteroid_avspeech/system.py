"""asteroid ``System`` for audio-visual batches, with face dropout."""
from typing import Sequence

import torch
from asteroid.engine.system import System
from asteroid.utils import flatten_dict

from .losses import NegSISDR
from .models.looking_to_listen import faceless_items


class AVSystem(System):
    """Trains a :class:`~asteroid_avspeech.models.LookingToListen` on audio-visual batches.

    A batch is ``(mixture, sources, visual)``: mixture ``(batch, time)``, sources
    ``(batch, n_src, time)``, visual ``(batch, n_src, frames, ...)`` (mouth crops or face
    embeddings, see the model). ``(mixture, sources)`` alone is accepted too (no faces), and
    items after ``visual`` (e.g. item ids) are ignored.

    Face dropout: during training each item's whole visual input is zeroed with probability
    ``face_dropout``, so one model also separates without faces (``asteroid-infer`` on a plain
    wav). Items without any face (dropped, all-zero in the data, or an audio-only model) are
    scored with the best permutation (PIT); the others in face order. ``loss_func`` must
    therefore accept ``(est, targets, pit=bool (batch,))``, as the losses in
    :mod:`asteroid_avspeech.losses` do.

    Args:
        model, optimizer, loss_func, train_loader, val_loader, scheduler, config: as for
            ``asteroid.engine.System``.
        face_dropout: probability of dropping an item's faces in a training batch.

    Raises (in training/validation steps):
        RuntimeError: the loss is NaN or infinite (names the batch index).
    """

    def __init__(
        self,
        model,
        optimizer,
        loss_func,
        train_loader,
        val_loader=None,
        scheduler=None,
        config=None,
        face_dropout: float = 0.0,
    ):
        super().__init__(model, optimizer, loss_func, train_loader, val_loader, scheduler, config)
        if not 0.0 <= face_dropout <= 1.0:
            raise ValueError(f"face_dropout must be in [0, 1], got {face_dropout}.")
        self.face_dropout = face_dropout
        self.si_sdr_loss = NegSISDR()

    @staticmethod
    def config_to_hparams(dic: dict) -> dict:
        """Flat hyper-parameters for the loggers.

        asteroid's version turns every list into a tensor, which fails on lists of strings
        (``metrics: [si_sdr, sdr]``); here lists and ``None`` are logged as text.
        """
        return {k: str(v) if v is None or isinstance(v, (list, tuple)) else v
                for k, v in flatten_dict(dic).items()}

    @staticmethod
    def unpack(batch: Sequence):
        """``(mixture, sources[, visual, ...])`` -> ``(mixture, sources, visual or None)``.

        Items after ``visual`` (e.g. the dataset's item ids) are ignored.
        """
        if len(batch) < 2:
            raise ValueError(
                "AVSystem expects batches (mixture, sources, visual) or (mixture, sources); "
                f"got {len(batch)} item(s)."
            )
        mixture, sources, *rest = batch
        return mixture, sources, (rest[0] if rest else None)

    def drop_faces(self, visual: torch.Tensor) -> torch.Tensor:
        """Zero the whole visual input of random items (probability ``face_dropout``)."""
        keep = torch.rand(visual.shape[0], device=visual.device) >= self.face_dropout
        return visual * keep.reshape(-1, *([1] * (visual.ndim - 1))).to(visual.dtype)

    def separate_batch(self, batch, train: bool):
        """Forward one batch: ``(estimates, sources, pit)``, ``pit`` True for faceless items."""
        mixture, sources, visual = self.unpack(batch)
        if not getattr(self.model, "use_visual", True):
            visual = None
        if visual is not None and train and self.face_dropout > 0:
            visual = self.drop_faces(visual)
        pit = faceless_items(visual, mixture.shape[0]).to(mixture.device)
        return self(mixture, visual), sources, pit

    def checked_loss(self, est, sources, pit, batch_nb, train: bool) -> torch.Tensor:
        """``loss_func(est, sources, pit=pit)``; a NaN/inf loss raises, naming the batch."""
        loss = self.loss_func(est, sources, pit=pit)
        if not torch.isfinite(loss):
            stage = "training" if train else "validation"
            raise RuntimeError(
                f"Non-finite loss ({loss.item()}) at {stage} batch {batch_nb} "
                f"(epoch {self.current_epoch}): check this batch's audio for NaN/inf or "
                "silence, or lower the learning rate."
            )
        return loss

    def common_step(self, batch, batch_nb, train=True):
        """Forward one batch and return the loss (face order, or PIT for faceless items)."""
        est, sources, pit = self.separate_batch(batch, train)
        return self.checked_loss(est, sources, pit, batch_nb, train)

    def validation_step(self, batch, batch_nb):
        """Log ``val_loss`` and ``val_si_sdr`` (dB, face order): whatever the training loss,
        the validation curve is also in the unit of the evaluation."""
        est, sources, pit = self.separate_batch(batch, train=False)
        loss = self.checked_loss(est, sources, pit, batch_nb, train=False)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_si_sdr", -self.si_sdr_loss(est, sources, pit=pit), on_epoch=True,
                 prog_bar=True, sync_dist=True)
