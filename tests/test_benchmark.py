"""Benchmarks (structure of ``local/benchmark.py --quick``, counted MACs) and fast inference."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from asteroid_avspeech.benchmark import (
    calibrate_batchnorm,
    count_macs,
    output_si_sdr,
    random_inputs,
    runnable_variants,
)
from asteroid_avspeech.models.fast_inference import inference_context
from asteroid_avspeech.models.looking_to_listen import LookingToListen
from hardware import requires_bf16

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(audio_channels=4, audio_out_channels=2, audio_kernels=[[3, 3], [3, 3]],
            audio_dilations=[[1, 1], [2, 1]], visual_feat_dim=8, lip_channels=[4], visual_channels=8,
            visual_kernels=[3], visual_dilations=[1], lstm_hidden=16, fc_dims=[32])


def _tiny_model(seconds: float = 0.4):
    torch.manual_seed(0)
    model = LookingToListen(preset="small", **TINY)
    wav, visual = random_inputs(model, 1, seconds)
    calibrate_batchnorm(model, wav, visual)
    return model, wav, visual


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops on two threads of a busy machine wait for each other at every OpenMP barrier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "TMPDIR": str(tmp), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "local/benchmark.py", "--quick", "--out", str(tmp / "r.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / "r.json").read_text()), proc.stdout


def _positive(*values):
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def test_quick_json_structure(quick_run):
    results, _ = quick_run
    recipe = yaml.safe_load((ROOT / "conf.yml").read_text())
    assert {"machine", "config", "matmul_gflops", "model", "train_layouts", "stft", "inference", "data_prep",
            "inference_rtf"} <= set(results)
    stft = results["stft"]
    assert stft["stft"] == recipe["model"]["stft"] and _positive(stft["filterbank_step_s"], stft["fft_step_s"])
    assert stft["speedup"] == pytest.approx(stft["filterbank_step_s"] / stft["fft_step_s"])
    assert stft["max_abs_diff"] < 1e-4  # the same transform
    layouts = results["train_layouts"]
    assert layouts["preset"] == "small" and layouts["batch"] == results["config"]["batch_size"]
    assert _positive(layouts["default_step_s"], layouts["channels_last_step_s"])
    assert layouts["speedup"] == pytest.approx(layouts["default_step_s"] / layouts["channels_last_step_s"])
    assert results["config"]["quick"] and _positive(*results["matmul_gflops"].values())
    # a bf16 product only where the model runs in bf16 (an AVX2 CPU emulates it, 25x slower)
    assert ("bf16" in results["matmul_gflops"]) == results["machine"]["cpu_runs_bf16"]
    n_filters, kernel_size, stride = recipe["model"]["stft"]
    assert results["config"]["model_args"] == dict(  # the models measured are the recipe's
        lip_size=recipe["visual"]["lip_size"], fusion=recipe["model"]["fusion"],
        audio_bottleneck=recipe["model"]["audio_bottleneck"], n_filters=n_filters, kernel_size=kernel_size,
        stride=stride, mask_domain=recipe["model"]["mask_domain"], audio_only_head=recipe["model"]["audio_only_head"])
    batch = results["config"]["batch_size"]
    rows = [(r["preset"], r["batch"], r["layout"]) for r in results["model"]]
    assert sorted(rows) == sorted((p, b, layout) for p in ("small", "paper") for b in (1, batch)
                                  for layout in ("default", "channels-last"))
    for row in results["model"]:
        assert _positive(row["params_m"], row["gmac_per_audio_s"], row["forward_audio_s_per_s"],
                         row["train_audio_s_per_s"], row["forward_gflops"], row["forward_matmul_ratio"])
        assert row["train_gmac_per_audio_s"] > 2 * row["gmac_per_audio_s"]  # backward counted too
        assert row["forward_peak_mb"] >= 0 and row["train_peak_mb"] >= 0
        assert "blstm" in row["gmac_by_module"] and row["gmac_by_module"]["blstm"] > 0
    paper = next(r for r in results["model"] if r["preset"] == "paper")
    # the paper's sizes with the recipe's fusion, audio bottleneck, STFT and heads (the published network: test_models)
    measured = LookingToListen(n_src=2, preset="paper", fusion=recipe["model"]["fusion"],
                               audio_bottleneck=recipe["model"]["audio_bottleneck"],
                               audio_only_head=recipe["model"]["audio_only_head"],
                               n_filters=n_filters, kernel_size=kernel_size, stride=stride)
    assert paper["params_m"] == pytest.approx(sum(p.numel() for p in measured.parameters()) / 1e6)
    # the 96-channel audio stream dominates: 70-90 GMAC/s at the paper's 100 frames/s of 257 bins
    frames_and_bins = (160 / stride) * (n_filters // 2 + 1) / 257
    assert 70 * frames_and_bins < paper["gmac_per_audio_s"] < 90 * frames_and_bins
    variants = {(r["preset"], r["variant"]) for r in results["inference"]}
    assert variants == {(p, v) for p in ("small", "paper") for v in runnable_variants()}
    for row in results["inference"]:
        assert _positive(row["audio_s_per_s"], row["speedup"], row["gflops"], row["matmul_ratio"])
        # every variant computes nearly the plain output (bf16 on random paper weights: 21-30 dB
        # from fp32 in our runs; a trained small model: >= 34 dB)
        assert row["output_si_sdr_db"] > 15
    stage0, stage2 = results["data_prep"]["stage0"], results["data_prep"]["stage2"]
    assert _positive(stage0["clips_per_s"], stage2["clips_per_s"], stage2["every_frame_clips_per_s"], stage2["speedup"])
    assert stage2["face_ratio_tracked"] > 0.9
    detector = results["data_prep"]["detector_layouts"]
    assert detector["keyframes"] > 0 and _positive(detector["default_s"], detector["channels_last_s"])
    assert detector["speedup"] == pytest.approx(detector["default_s"] / detector["channels_last_s"])
    assert detector["max_box_diff_px"] < 0.01  # the same detections
    for row in results["inference_rtf"]:
        assert row["faces"] >= 1 and _positive(row["rtf"], row["seconds"])


def test_quick_markdown_tables(quick_run):
    _, stdout = quick_run
    assert "Machine:" in stdout and "GFLOP/s fp32" in stdout and "model arguments besides the preset: lip_size=" in stdout
    for header in ("| preset | params (M) |", "| training step (fwd + bwd + Adam) |", "| STFT + iSTFT + backward |",
                   "| preset | inference variant |", "| data preparation |",
                   "| stage 2 keyframe detection (MTCNN) |", "| video -> tracks |"):
        assert header in stdout
    # model rows: batches 1 and 2 x two conv layouts
    assert sum(line.startswith("| paper |") for line in stdout.splitlines()) == 4 + len(runnable_variants())


def test_macs_count_the_lstm():
    model, _, _ = _tiny_model()
    seconds = 1.0
    macs = count_macs(model, seconds)
    frames = model.stft.n_frames(int(seconds * model.sample_rate))
    hidden, fused = model.blstm.hidden_size, model.blstm.input_size
    expected = 2 * frames * 4 * hidden * (fused + hidden)  # two directions
    assert macs["by_module"]["blstm"] == pytest.approx(expected / seconds)
    assert macs["forward"] == pytest.approx(sum(macs["by_module"].values()))
    assert 1.5 * macs["forward"] < macs["forward_backward"] < 3.5 * macs["forward"]  # backward counted
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_macs_count_the_ffts():
    """The STFT (a child module) and the iSTFT of every output (``other``): ``2.5 n log2 n`` FLOPs per frame."""
    model, _, _ = _tiny_model()
    macs = count_macs(model, 1.0)
    n_fft = model.stft.n_filters
    per_transform = model.stft.n_frames(int(model.sample_rate)) * 2.5 * n_fft * math.log2(n_fft) / 2
    assert macs["by_module"]["stft"] == pytest.approx(per_transform, rel=1e-3)
    assert macs["by_module"]["other"] == pytest.approx(model.n_src * per_transform, rel=1e-3)


@pytest.mark.parametrize("precision, channels_last, min_db", [pytest.param("bf16", True, 30.0, marks=requires_bf16),
                                                               pytest.param("bf16", False, 30.0, marks=requires_bf16),
                                                               ("fp32", True, 80.0)])
def test_inference_context_close_to_fp32(precision, channels_last, min_db):
    model, wav, visual = _tiny_model()
    model.train()
    with torch.no_grad():
        plain = model.forward_wav(wav, visual)
    with inference_context(model, precision=precision, channels_last=channels_last):
        assert not model.training
        fast = model(wav, visual)
    assert fast.dtype == torch.float32 and fast.shape == plain.shape == (1, 2, wav.shape[-1])
    assert output_si_sdr(fast, plain) > min_db
    # restored: training flag, plain weight layout, the class' estimate_masks, autograd
    assert model.training and "estimate_masks" not in vars(model)
    assert all(p.is_contiguous() for p in model.parameters())
    model(wav, visual).square().mean().backward()
    assert model.audio_stream.net[0].weight.grad is not None


@requires_bf16
def test_inference_context_restores_on_error():
    model, _, _ = _tiny_model()
    with pytest.raises(RuntimeError, match="boom"):
        with inference_context(model, precision="bf16"):
            raise RuntimeError("boom")
    assert "estimate_masks" not in vars(model) and model.audio_stream.net[0].weight.is_contiguous()


def test_inference_context_rejects_bad_input():
    model, _, _ = _tiny_model()
    with pytest.raises(ValueError, match="valid: auto, fp32"):
        with inference_context(model, precision="int8"):
            pass
    with pytest.raises(ValueError, match="CUDA"):
        with inference_context(model, precision="fp16"):
            pass
    with pytest.raises(ValueError, match="LookingToListen"):
        with inference_context(torch.nn.Linear(2, 2)):
            pass


def test_inference_context_keeps_a_channels_last_training_layout():
    model, wav, visual = _tiny_model()
    model.audio_stream.set_channels_last(True)  # as train.py does
    for channels_last in (False, True):
        with inference_context(model, precision="fp32", channels_last=channels_last):
            model(wav, visual)
        assert model.audio_stream.channels_last
        assert model.audio_stream.net[0].weight.is_contiguous(memory_format=torch.channels_last)


@requires_bf16
def test_inference_context_nests():
    model, wav, visual = _tiny_model()
    model.train()
    with inference_context(model, precision="bf16"):
        with inference_context(model, precision="bf16"):
            inner = model(wav, visual)
        assert "estimate_masks" in vars(model)
    assert "estimate_masks" not in vars(model) and model.training
    assert inner.dtype == torch.float32
