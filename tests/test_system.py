"""Tests of the permutation-aware losses and the AVSystem training step."""
import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from asteroid_avspeech.losses import CompressedSpectrogramMSE, NegSISDR, make_loss, permuted_mean
from asteroid_avspeech.models import LookingToListen
from asteroid_avspeech.system import AVSystem
from hardware import requires_bf16

SR, FPS = 16000, 25
TINY = dict(
    preset="small", audio_channels=4, audio_out_channels=2, audio_kernels=[[3, 3]],
    audio_dilations=[[1, 1]], lip_channels=[4], visual_feat_dim=8, visual_channels=8,
    visual_kernels=[3], visual_dilations=[1], lstm_hidden=8, fc_dims=[16],
)


def _batch(batch=2, n_src=2, seconds=0.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sources = torch.randn(batch, n_src, int(seconds * SR), generator=gen)
    visual = torch.randint(1, 256, (batch, n_src, round(seconds * FPS), 12, 12),
                           generator=gen, dtype=torch.uint8)
    return sources.sum(1), sources, visual


@pytest.mark.parametrize("loss", [CompressedSpectrogramMSE(), NegSISDR()])
def test_losses_face_order_vs_pit_per_item(loss):
    _, sources, _ = _batch()
    swapped = sources.flip(1)  # perfect estimates in the wrong order
    perfect = loss(sources, sources)
    assert loss(swapped, sources, pit=torch.tensor([True, True])) == pytest.approx(
        perfect.item(), abs=1e-4)
    wrong = loss(swapped, sources)  # pit=None: face order, the swap is penalised
    assert wrong > perfect + 1.0 if isinstance(loss, NegSISDR) else wrong > perfect + 1e-3
    # Only item 1 may be permuted: item 0's swap still counts, at half weight.
    half = loss(swapped, sources, pit=torch.tensor([False, True]))
    expected = (loss(swapped[:1], sources[:1]) + loss(sources[1:], sources[1:])) / 2
    assert half.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-4)


def test_permuted_mean_three_sources():
    pairwise = torch.ones(1, 3, 3)
    pairwise[0, 0, 2] = pairwise[0, 1, 0] = pairwise[0, 2, 1] = 0.0  # best: a rotation
    assert permuted_mean(pairwise, torch.tensor([True])) == 0.0
    assert permuted_mean(pairwise, torch.tensor([False])) == 1.0


def test_pit_weight_mixes_face_order_and_best_order_for_items_with_faces():
    pairwise = torch.tensor([[[4.0, 0.0], [0.0, 4.0]],    # item 0: the outputs are swapped
                             [[1.0, 3.0], [3.0, 1.0]]])   # item 1: in face order
    # item 0: 0.25 x 4 (face order) + 0.75 x 0 (best order); item 1: 1 either way
    assert permuted_mean(pairwise, pit_weight=0.75) == pytest.approx((1.0 + 1.0) / 2)
    # a faceless item keeps the best order alone
    assert permuted_mean(pairwise, torch.tensor([True, False]), pit_weight=0.75) == pytest.approx((0.0 + 1.0) / 2)
    assert permuted_mean(pairwise, pit_weight=0.0) == pytest.approx((4.0 + 1.0) / 2)
    for name in ("si_sdr", "spec_mse"):
        assert make_loss(name, pit_weight=0.25).pit_weight == 0.25
        for bad in (1.0, -0.1, "half", None):  # at 1 nothing would make the outputs follow the faces
            with pytest.raises(ValueError, match="pit_weight"):
                make_loss(name, pit_weight=bad)


def test_make_loss_takes_stft_from_model_args():
    model = LookingToListen(n_src=1, **TINY, power=0.5)
    loss = make_loss("spec_mse", model)
    assert isinstance(loss, CompressedSpectrogramMSE) and loss.power == 0.5
    assert make_loss("spec_mse", dict(model.get_model_args(), power=0.4)).power == 0.4
    assert isinstance(make_loss("si_sdr"), NegSISDR)
    with pytest.raises(ValueError, match="spec_mse, si_sdr"):
        make_loss("l1")


def _system(face_dropout=0.0, loss_func=None, **model_kwargs):
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, **{**TINY, **model_kwargs})
    loader = DataLoader(TensorDataset(*_batch(batch=4)), batch_size=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return AVSystem(model, optimizer, loss_func or make_loss("spec_mse"), loader,
                    val_loader=loader, face_dropout=face_dropout, config={"tiny": True})


def test_one_training_step_with_lightning(tmp_path):
    system = _system(face_dropout=0.5)
    before = [p.detach().clone() for p in system.model.parameters()]
    trainer = pl.Trainer(fast_dev_run=True, logger=CSVLogger(tmp_path), accelerator="cpu",
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.fit(system)
    changed = [not torch.equal(b, p) for b, p in zip(before, system.model.parameters())]
    assert sum(changed) > len(changed) // 2
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    # validation (fast_dev_run: the first batch) also reports SI-SDR in dB, face order
    mixture, sources, visual = _batch(batch=4)
    expected = -NegSISDR()(system.model.forward_wav(mixture[:2], visual[:2]), sources[:2])
    assert trainer.callback_metrics["val_si_sdr"].item() == pytest.approx(expected.item(), abs=1e-3)


class _SpyLoss(torch.nn.Module):
    def forward(self, est, targets, pit=None):
        self.pit = pit
        return (est - targets).pow(2).mean()


def test_face_dropout_and_pit_selection():
    spy = _SpyLoss()
    system = _system(face_dropout=1.0, loss_func=spy)
    mixture, sources, visual = _batch()
    assert (system.drop_faces(visual) == 0).all()
    system.common_step((mixture, sources, visual), 0, train=True)
    assert spy.pit.tolist() == [True, True]
    system.common_step((mixture, sources, visual), 0, train=False)  # no dropout in validation
    assert spy.pit.tolist() == [False, False]
    visual[1] = 0  # an item without any face in the data
    system.common_step((mixture, sources, visual), 0, train=False)
    assert spy.pit.tolist() == [False, True]
    system.common_step((mixture, sources), 0, train=False)
    assert spy.pit.tolist() == [True, True]
    system.common_step((mixture, sources, visual, ["id0", "id1"]), 0, train=False)  # + item ids
    assert spy.pit.tolist() == [False, True]
    assert torch.equal(_system(face_dropout=0.0).drop_faces(visual), visual)


def test_audio_only_model_trains_with_pit():
    spy = _SpyLoss()
    system = _system(loss_func=spy, use_visual=False)
    system.common_step(_batch(), 0, train=True)
    assert spy.pit.tolist() == [True, True]


def test_nan_loss_names_the_batch():
    system = _system()
    mixture, sources, visual = _batch()
    mixture[0, 100] = float("nan")
    with pytest.raises(RuntimeError, match="batch 7"):
        system.common_step((mixture, sources, visual), 7, train=True)
    with pytest.raises(ValueError, match="face_dropout"):
        _system(face_dropout=1.5)
    with pytest.raises(ValueError, match="mixture, sources"):
        system.common_step((mixture,), 0)


def test_build_model_applies_model_sizes_and_rejects_unknown_ones():
    from asteroid_avspeech.config import ConfigError, load_conf
    from asteroid_avspeech.train import build_model

    conf = load_conf("conf.yml")
    conf["model"]["model_sizes"] = {"lstm_hidden": 24, "fc_dims": [32]}
    model = build_model(conf)
    assert model.blstm.hidden_size == 24 and model.get_model_args()["fc_dims"] == [32]
    assert model.get_model_args()["audio_channels"] == LookingToListen(preset="small").sizes["audio_channels"]
    conf["model"]["model_sizes"] = {"lstm_hiden": 24}
    with pytest.raises(ConfigError, match="lstm_hiden.*valid"):
        build_model(conf)
    conf["model"].update(model_sizes={}, preset="huge")
    with pytest.raises(ValueError, match="Unknown preset 'huge'; valid presets: paper, small"):
        build_model(conf)


def test_build_model_takes_the_stft_from_the_conf():
    from asteroid_avspeech.benchmark import random_inputs
    from asteroid_avspeech.config import ConfigError, load_conf
    from asteroid_avspeech.train import build_model

    conf = load_conf("conf.yml")
    conf["model"]["stft"] = [512, 512, 256]
    model = build_model(conf)
    args = model.get_model_args()
    assert (args["n_filters"], args["kernel_size"], args["stride"]) == (512, 512, 256)
    wav, visual = random_inputs(model, batch=1, seconds=1.0)
    frames = (16000 + 512 - 256 - 1) // 256 + 1  # the STFT's frame count (models.spectral.STFT)
    assert model.stft(wav).shape[-2] == frames and model(wav, visual).shape == (1, 2, 16000)
    del conf["model"]["stft"]  # a conf from before the key: the paper's STFT
    assert build_model(conf).get_model_args()["stride"] == 160
    for bad in ([512, 400], [512, 400, 0], [256, 400, 160], [512, 160, 400], "512,400,160"):
        conf["model"]["stft"] = bad
        with pytest.raises(ConfigError, match="stft"):
            build_model(conf)


def test_warmup_cosine_schedule():
    from asteroid_avspeech.config import ConfigError
    from asteroid_avspeech.schedule import WarmupCosine, make_scheduler

    factor = WarmupCosine(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5) and factor(110) == pytest.approx(0.0, abs=1e-12)
    assert factor(500) == pytest.approx(0.0, abs=1e-12)  # past the end: stays at the floor
    values = [factor(step) for step in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))

    optimizer = torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    optim = dict(lr_schedule="cosine", warmup_steps=10, lr_half_patience=4)
    sched = make_scheduler(optimizer, optim, total_steps=110)
    assert sched["interval"] == "step" and optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    plateau = make_scheduler(optimizer, dict(optim, lr_schedule="plateau"), total_steps=110)
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(ConfigError, match="lr_schedule 'linear'; valid: cosine, plateau"):
        make_scheduler(optimizer, dict(optim, lr_schedule="linear"), total_steps=110)


def test_max_steps_overrides_epochs():
    from asteroid_avspeech.schedule import stop_conditions

    by_steps = stop_conditions(dict(epochs=60, max_steps=4000, max_minutes=45))
    assert by_steps == dict(max_epochs=-1, max_steps=4000, max_time=dict(minutes=45))
    by_epochs = stop_conditions(dict(epochs=3, max_steps=None, max_minutes=None))
    assert by_epochs == dict(max_epochs=3, max_steps=-1, max_time=None)


def test_time_cap_leaves_the_recipe_its_evaluation_time(caplog):
    from asteroid_avspeech.schedule import time_cap_minutes

    training = dict(max_minutes=20, recipe_minutes=30, eval_minutes=4)
    start = 1000.0
    # a fast machine: stages 0-3 took 4 min, so the recipe deadline leaves more than max_minutes
    assert time_cap_minutes(training, start, now=start + 4 * 60) == 20
    # a slow one: 7.5 min before training leaves 30 - 4 - 7.5 = 18.5 min, and says so
    assert time_cap_minutes(training, start, now=start + 7.5 * 60) == pytest.approx(18.5)
    assert "Training time cap 18.5 min instead of max_minutes 20" in caplog.text
    # a resumed run: Lightning's Timer counts its 5 trained minutes against the cap too
    assert time_cap_minutes(training, start, now=start + 12 * 60, trained_s=300) == pytest.approx(5 + 30 - 4 - 12)
    # stage 4 on its own (no run.sh start), or no recipe limit: max_minutes alone
    assert time_cap_minutes(training, None, now=start + 29 * 60) == 20
    assert time_cap_minutes(dict(training, recipe_minutes=None), start, now=start + 29 * 60) == 20
    assert time_cap_minutes(dict(training, max_minutes=None), start, now=start + 6 * 60) == pytest.approx(20)
    # earlier stages that used up the budget (a download, a larger corpus): max_minutes, with a warning
    assert time_cap_minutes(training, start, now=start + 25.5 * 60) == 20
    assert "took 25.5 min of recipe_minutes 30" in caplog.text


def test_resolve_precision_names_and_errors(monkeypatch):
    from asteroid_avspeech.models import fast_inference
    from asteroid_avspeech.models.fast_inference import default_precision, resolve_precision
    from asteroid_avspeech.train import LIGHTNING_PRECISIONS

    assert resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(fast_inference, "cpu_runs_bf16", lambda: True)
    assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(fast_inference, "cpu_runs_bf16", lambda: False)  # an AVX2-only CPU
    with pytest.raises(ValueError, match="this CPU cannot run the model in bf16 .* use fp32, or auto"):
        resolve_precision("bf16", "cpu")
    assert resolve_precision("bf16", "cuda") == "bf16"
    assert resolve_precision("fp16", "cuda") == "fp16"
    assert resolve_precision("auto", "cpu") == default_precision("cpu")
    assert LIGHTNING_PRECISIONS == {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="Unknown precision 'int8'; valid: auto, fp32, bf16, fp16"):
        resolve_precision("int8", "cpu")


@pytest.mark.parametrize("key, value, message", [("precision", "int8", "training.precision: Unknown precision .int8."),
                                                   ("precision", "bf16", "training.precision: precision bf16: this CPU"),
                                                   ("export_weights", "last", "Unknown export_weights 'last'")])
def test_train_rejects_bad_settings_before_writing_anything(tmp_path, monkeypatch, key, value, message):
    from asteroid_avspeech.config import ConfigError, load_conf
    from asteroid_avspeech.models import fast_inference
    from asteroid_avspeech.train import train

    monkeypatch.setattr(fast_inference, "cpu_runs_bf16", lambda: False)  # an AVX2-only CPU
    conf = load_conf("conf.yml")
    conf["training"][key] = value
    with pytest.raises(ConfigError, match=message):
        train(conf, tmp_path / "exp")
    assert not (tmp_path / "exp").exists()


@requires_bf16
def test_bf16_mixed_training_step_keeps_float32_weights_and_outputs(tmp_path):
    system = _system(loss_func=NegSISDR())
    trainer = pl.Trainer(fast_dev_run=True, logger=CSVLogger(tmp_path), accelerator="cpu",
                         precision="bf16-mixed", enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(system)
    assert all(p.dtype == torch.float32 for p in system.model.parameters())
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    mixture, _, visual = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert system.model(mixture, visual).dtype == torch.float32


@pytest.mark.parametrize("limits, reason", [
    (dict(max_steps=3), "step budget"),
    (dict(max_steps=100000, max_time=dict(seconds=1)), "time cap"),
    (dict(max_steps=100000, callbacks=[EarlyStopping(monitor="val_loss", stopping_threshold=1e9)]), "early stopping"),
])
def test_training_end_is_logged_with_its_reason(tmp_path, caplog, limits, reason):
    from asteroid_avspeech.schedule import log_stop

    trainer = pl.Trainer(logger=CSVLogger(tmp_path), accelerator="cpu", enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=1, **limits)
    trainer.fit(_system())
    with caplog.at_level("INFO", logger="asteroid_avspeech.schedule"):
        log_stop(trainer, limits["max_steps"], peak_lr=1e-3)
    assert f"Training ended at step {trainer.global_step} of {limits['max_steps']} by {reason}" in caplog.text
    assert 0 < trainer.global_step <= limits["max_steps"]
    # the tiny system keeps its LR at the peak: a time cap leaves the schedule unfinished
    assert ("raise max_minutes" in caplog.text) == (reason == "time cap")


def test_cosine_progress_follows_the_clock_when_it_is_ahead():
    from asteroid_avspeech.schedule import WarmupCosine

    factor = WarmupCosine(warmup_steps=10, total_steps=110)
    factor.progress_floor = 0.5  # half of the usable time gone
    assert factor(20) == pytest.approx(0.5)  # step progress 0.1: the clock leads
    assert factor(85) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))  # the steps lead
    assert factor(5) == pytest.approx(0.6)  # warm-up is by steps only
    factor.progress_floor = 1.0
    assert factor(20) == pytest.approx(0.0, abs=1e-12)


def test_slow_training_ends_at_the_bottom_of_a_clock_driven_schedule(tmp_path, caplog):
    """With a cap far too short for max_steps, the cosine follows the clock and ends at 0 before the cap."""
    from asteroid_avspeech.schedule import FitScheduleToTimeCap, log_stop, make_scheduler

    system = _system(loss_func=NegSISDR())
    optim = dict(lr_schedule="cosine", warmup_steps=2, lr_half_patience=4)
    system.scheduler = make_scheduler(system.optimizer, optim, total_steps=10 ** 6)
    schedule = system.scheduler["scheduler"]
    cosine = schedule.lr_lambdas[0]
    trainer = pl.Trainer(max_steps=10 ** 6, max_time=dict(seconds=6), logger=CSVLogger(tmp_path),
                         accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, callbacks=[FitScheduleToTimeCap(cosine, margin=0.5)])  # a busy machine may pause >1 s
    with caplog.at_level("INFO", logger="asteroid_avspeech.schedule"):
        trainer.fit(system)
        ended = log_stop(trainer, 10 ** 6, peak_lr=1e-3, fitted_to_time=cosine.progress_floor >= 1.0)
    assert "the cosine schedule now follows the clock" in caplog.text
    assert cosine.progress_floor == 1.0 and 0 < trainer.global_step == ended["steps"] < 10 ** 6
    assert "by time cap, schedule fitted (learning rate at 0 % of its peak)" in caplog.text
    assert ended["stopped_by"] == "time cap, schedule fitted" and ended["final_lr_share"] == 0.0
    # the LambdaLR state carries the floor, so a resumed run keeps the schedule where it was
    assert schedule.state_dict()["lr_lambdas"][0]["progress_floor"] == 1.0


def _fit(tmp_path, system, max_epochs=-1, max_steps=-1, train_batches=1, max_time=None):
    """Train as stage 4 does (its checkpoints, resumed from last.ckpt when there)."""
    from asteroid_avspeech.train import checkpoint_callbacks, fit_resumable

    best_k, latest = checkpoint_callbacks(tmp_path / "checkpoints")
    trainer = pl.Trainer(max_epochs=max_epochs, max_steps=max_steps, max_time=max_time, limit_train_batches=train_batches,
                         limit_val_batches=1, accelerator="cpu", callbacks=[best_k, latest],
                         logger=CSVLogger(tmp_path), enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    fit_resumable(trainer, system, tmp_path / "checkpoints" / "last.ckpt")
    return trainer, best_k


def test_last_checkpoint_follows_every_validation_and_resumes(tmp_path):
    """last.ckpt holds the latest state although validation stopped improving, and training resumes from it."""
    system = _system()
    # a constant validation loss (no learning, frozen BatchNorm statistics): no top-5 checkpoint after the 5th
    for group in system.optimizer.param_groups:
        group["lr"] = 0.0
    for module in system.model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0
    trainer, best_k = _fit(tmp_path, system, max_epochs=7)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert max(int(torch.load(p, weights_only=False)["global_step"]) for p in best_k.best_k_models) == 5
    assert torch.load(last, weights_only=False)["global_step"] == trainer.global_step == 7
    resumed, _ = _fit(tmp_path, _system(), max_epochs=8)
    assert resumed.global_step == 8


def test_the_end_of_training_is_saved_and_a_rerun_trains_no_more(tmp_path):
    """Training that ends between validations (max_steps mid-epoch) is saved; rerunning it changes nothing."""
    from asteroid_avspeech.train import trained_seconds

    system = _system()
    assert trained_seconds(tmp_path / "checkpoints" / "last.ckpt") == 0.0  # nothing trained yet
    trainer, _ = _fit(tmp_path, system, max_steps=3, train_batches=2, max_time=dict(minutes=10))  # validations at steps 2, (4)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert trainer.global_step == last["global_step"] == 3
    trained = trained_seconds(tmp_path / "checkpoints" / "last.ckpt")  # what the recipe deadline counts on a resume
    assert 0 < trained == last["callbacks"]["Timer"]["time_elapsed"]["train"]
    rerun = _system()  # the same initial weights: restored from last.ckpt, they must come back as trained
    rerun_trainer, _ = _fit(tmp_path, rerun, max_steps=3, train_batches=2, max_time=dict(minutes=10))
    assert rerun_trainer.global_step == 3
    assert all(torch.equal(a, b) for a, b in zip(system.model.state_dict().values(), rerun.model.state_dict().values()))


@pytest.mark.parametrize("weights", ["final", "best_val"])
def test_best_model_holds_the_chosen_weights(tmp_path, weights):
    from types import SimpleNamespace

    from asteroid_avspeech.schedule import log_stop
    from asteroid_avspeech.train import export_best_model

    system = _system()
    trainer, best_k = _fit(tmp_path, system, max_epochs=3)
    final = {k: v.clone() for k, v in system.model.state_dict().items()}
    best = torch.load(best_k.best_model_path, weights_only=False)
    infos = SimpleNamespace(get_infos=lambda: {"dataset": "tiny"})
    path = export_best_model(best_k, system.model, infos, tmp_path, log_stop(trainer, 3, peak_lr=1e-3), weights)
    package = torch.load(path, weights_only=True)
    expected = final if weights == "final" else {k[len("model."):]: v for k, v in best["state_dict"].items()}
    assert package["training"]["weights"] == weights
    assert package["training"]["weights_step"] == (3 if weights == "final" else best["global_step"])
    assert all(torch.equal(package["state_dict"][k], expected[k]) for k in final)


def test_early_stopping_is_optional_and_checked():
    from asteroid_avspeech.config import ConfigError
    from asteroid_avspeech.train import early_stopping

    assert early_stopping(None) == []  # train to max_steps
    (callback,) = early_stopping(7)
    assert isinstance(callback, EarlyStopping) and callback.patience == 7 and callback.monitor == "val_loss"
    for bad in (0, -3, 2.5, "20", True):
        with pytest.raises(ConfigError, match="early_stop_patience"):
            early_stopping(bad)


def test_validation_runs_every_val_every_steps_across_epochs(tmp_path):
    from asteroid_avspeech.config import ConfigError
    from asteroid_avspeech.schedule import validation_interval

    assert validation_interval(dict(val_every_steps=None), "plateau") == {}  # every epoch
    validated_at = []

    class Record(pl.Callback):
        def on_validation_end(self, trainer, pl_module):
            validated_at.append(trainer.global_step)

    # 2 batches per epoch: validations every 3 steps fall inside epochs and span their ends
    trainer = pl.Trainer(max_steps=7, accelerator="cpu", callbacks=[Record()], logger=CSVLogger(tmp_path),
                         num_sanity_val_steps=0, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, **validation_interval(dict(val_every_steps=3), "cosine"))
    trainer.fit(_system())
    assert validated_at == [3, 6]
    for bad in (0, -200, 2.5, "200", True):
        with pytest.raises(ConfigError, match="val_every_steps must be a positive integer or null"):
            validation_interval(dict(val_every_steps=bad), "cosine")
    with pytest.raises(ConfigError, match="plateau.*val_every_steps: null"):
        validation_interval(dict(val_every_steps=200), "plateau")


def test_gpu_ids_without_a_gpu_are_an_error_not_a_silent_cpu_run(monkeypatch):
    from asteroid_avspeech.config import ConfigError
    from asteroid_avspeech.train import trainer_devices

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError, match="GPU ids 0,1 were asked for .* leave --id empty"):
        trainer_devices()
    for no_gpu in ("", "-1"):  # run.sh without --id; the usual "hide every GPU"
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", no_gpu)
        assert trainer_devices() == dict(accelerator="cpu", devices=1)
