"""End to end: run.sh stages 0-6 on a tiny generated corpus, then load what it exported."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from asteroid.models import BaseModel

from asteroid_avspeech.config import load_conf
from asteroid_avspeech.models.fast_inference import resolve_precision
from asteroid_avspeech.models.looking_to_listen import PRESETS
from asteroid_avspeech.publish import conv_stack_label, experiment_label, load_evaluated

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipe")
    conf = yaml.safe_load((REPO / "conf.yml").read_text())
    conf["corpus"].update(corpus_dir=str(tmp / "corpus"), noise_dir=str(tmp / "noise"), n_speakers=6,
                          clips_per_speaker=2, clip_seconds=1.5, workers=1)
    conf["data"]["data_dir"] = str(tmp / "prepared")
    conf["mixtures"].update(conditions=["2S_clean", "1S_noise"], val_fraction=0.34, test_fraction=0.34,
                            n_val_mixtures=2, n_test_mixtures=3)
    # cpu_processes=2: training runs Lightning's DDP (gloo) on the CPU, the --id 0,1 code path
    conf["training"].update(segment=1.0, batch_size=1, epochs=1, max_steps=None, num_workers=0, max_minutes=None,
                            cpu_processes=2, val_every_steps=1)
    conf["eval"].update(metrics=["si_sdr", "stoi"], n_save_examples=1)
    conf_path = tmp / "conf.yml"
    conf_path.write_text(yaml.safe_dump(conf))
    exp = tmp / "exp"
    cmd = ["bash", str(REPO / "run.sh"), "--python_path", sys.executable, "--conf", str(conf_path),
           "--expdir", str(exp), "--results", str(tmp / "RESULTS.md"), "--stage", "0", "--stop-stage", "6"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return tmp, exp, res


def test_every_stage_ran(recipe_run):
    _, _, res = recipe_run
    for stage in range(7):
        assert f"Stage {stage}:" in res.stdout
    assert "MEMBER: 2/2" in res.stdout + res.stderr  # both DDP processes trained


def test_best_model_loads_weights_only_and_from_pretrained(recipe_run):
    tmp, exp, _ = recipe_run
    package = torch.load(exp / "best_model.pth", weights_only=True)
    assert package["model_name"] == "LookingToListen" and package["dataset"]
    ended = package["training"]  # how training ended, for the results table
    assert ended["stopped_by"] in ("step budget", "time cap", "time cap, schedule fitted", "early stopping") and 0 < ended["steps"] <= ended["max_steps"]
    assert ended["precision"] == resolve_precision(load_conf(tmp / "conf.yml")["training"]["precision"], "cpu")
    model = BaseModel.from_pretrained(str(exp / "best_model.pth"))
    out = model.forward_wav(torch.randn(1, 16000))
    assert out.shape == (1, 2, 16000)
    assert json.loads((exp / "best_k_models.json").read_text())
    assert (exp / "training_curve.png").stat().st_size > 0


def test_evaluation_reports(recipe_run):
    _, exp, _ = recipe_run
    table = pd.read_csv(exp / "eval" / "2S_clean" / "all_metrics.csv")
    assert len(table) == 3
    final = json.loads((exp / "eval" / "2S_clean" / "final_metrics.json").read_text())
    for key in ("si_sdr", "si_sdr_imp", "stoi_imp", "probe_swapped_si_sdr", "probe_frozen_si_sdr", "probe_no_faces_si_sdr"):
        assert key in final
    assert final["si_sdr_imp"] == pytest.approx((table["si_sdr"] - table["input_si_sdr"]).mean())
    assert set(table["face_order_correct"]) <= {0.0, 1.0}
    assert final["face_order_accuracy"] == pytest.approx(table["face_order_correct"].mean())
    assert list((exp / "eval" / "2S_clean" / "examples").glob("*/spectrograms.png"))


def test_publish_and_results(recipe_run):
    tmp, exp, _ = recipe_run
    published = torch.load(exp / "publish_dir" / "model.pth", weights_only=True)
    assert published["infos"]["final_metrics"]["n_mixtures"] == 3
    results = (tmp / "RESULTS.md").read_text()
    assert "SI-SDRi" in results and "linear masks, loss si_sdr" in results and ", 2S_clean |" in results
    assert "preset small (audio convs 1x7, 7x1, 2 x 3x3)," in results  # read from the trained model's args
    assert "every voice on its own face (share)" in results


def test_publish_names_the_missing_stage(recipe_run, tmp_path):
    _, exp, _ = recipe_run
    with pytest.raises(FileNotFoundError, match="best_model.pth not found: run stage 4"):
        load_evaluated(tmp_path, "2S_clean")
    with pytest.raises(FileNotFoundError, match="final_metrics.json not found: run stage 5"):
        load_evaluated(exp, "3S_clean")


def test_results_label_names_what_changes_the_scores():
    conf = load_conf(REPO / "conf.yml")
    conf["model"].update(fusion="per_speaker", mask_domain="linear", audio_bottleneck=256, stft=[512, 512, 256])
    conf["training"].update(speed_perturbation=[0.9, 1.0, 1.1], max_steps=3200, pit_weight=0.5)
    assert experiment_label("l2l", "2S_clean", conf) == (
        "l2l, synthetic corpus, preset small, audio-visual (per_speaker fusion), STFT 512/512/256, "
        "audio bottleneck 256, linear masks, loss si_sdr, pit_weight 0.5, speeds 0.9/1/1.1, 3200 steps, 2S_clean")
    conf["model"]["stft"] = [512, 400, 160]  # the paper's
    assert "STFT" not in experiment_label("l2l", "2S_clean", conf)
    conf["model"]["audio_bottleneck"] = 0  # the paper's network
    assert "bottleneck" not in experiment_label("l2l", "2S_clean", conf)
    conf["training"]["pit_weight"] = 0.0
    assert "pit_weight" not in experiment_label("l2l", "2S_clean", conf)
    cut = dict(steps=2841, max_steps=3200, stopped_by="time cap", final_lr_share=0.03)
    assert experiment_label("l2l", "2S_clean", conf, cut).endswith(", 2841 of 3200 steps (time cap), 2S_clean")
    assert experiment_label("l2l", "2S_clean", conf, dict(cut, steps=3200)).endswith(", 3200 steps, 2S_clean")
    best_val = dict(cut, steps=3200, weights="best_val", weights_step=2028)
    assert experiment_label("l2l", "2S_clean", conf, best_val).endswith(
        ", 3200 steps, weights of step 2028 (best validation), 2S_clean")
    conf["training"]["precision"] = "auto"  # the label gives what auto resolved to in training
    assert experiment_label("l2l", "2S_clean", conf, dict(cut, precision="bf16")).endswith(
        ", speeds 0.9/1/1.1, bf16, 2841 of 3200 steps (time cap), 2S_clean")
    assert ", fp32," not in experiment_label("l2l", "2S_clean", conf, dict(cut, precision="fp32"))
    conf["training"]["precision"] = "fp32"
    conf["model"]["use_visual"] = False  # all items faceless: pit_weight plays no part
    conf["training"].update(speed_perturbation=[1.0], max_steps=None, pit_weight=0.5)
    assert experiment_label("ao", "3S_clean", conf) == (
        "ao, synthetic corpus, preset small, audio-only, linear masks, loss si_sdr, 3S_clean")


def test_results_label_tells_apart_versions_of_a_preset():
    conf = load_conf(REPO / "conf.yml")
    undilated = dict(audio_kernels=[[1, 7], [7, 1], [3, 3], [3, 3]], audio_dilations=[[1, 1]] * 4)
    dilated = dict(audio_kernels=[[1, 7], [7, 1], [5, 5], [5, 5]], audio_dilations=[[1, 1], [1, 1], [2, 1], [4, 2]])
    assert ", preset small (audio convs 1x7, 7x1, 2 x 3x3), " in experiment_label("l2l", "2S_clean", conf,
                                                                               model_args=undilated)
    assert ", preset small (audio convs 1x7, 7x1, 2 x 5x5 dilated), " in experiment_label("l2l", "2S_clean", conf,
                                                                                       model_args=dilated)
    paper = PRESETS["paper"]
    assert conv_stack_label(paper["audio_kernels"], paper["audio_dilations"]) == (
        "1x7, 7x1, 5x5, 5 x 5x5 dilated, 5x5, 5 x 5x5 dilated")


def test_rerun_skips_finished_data_stages(recipe_run):
    tmp, _, _ = recipe_run
    csv_before = (tmp / "prepared" / "mixtures" / "test_2S_clean.csv").read_bytes()
    cmd = ["bash", str(REPO / "run.sh"), "--python_path", sys.executable, "--conf", str(tmp / "conf.yml"),
           "--stage", "0", "--stop-stage", "3"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp / "prepared" / "mixtures" / "test_2S_clean.csv").read_bytes() == csv_before


def test_oracle_masks_on_the_test_split(recipe_run):
    tmp, _, _ = recipe_run
    out = tmp / "oracle"
    cmd = [sys.executable, str(REPO / "local" / "oracle_masks.py"), "--conf", str(tmp / "conf.yml"),
           "--exp_dir", str(out), "--kinds", "irm", "psm", "--metrics", "si_sdr"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    for kind in ("irm", "psm"):
        final = json.loads((out / kind / "eval" / "2S_clean" / "final_metrics.json").read_text())
        assert final["n_mixtures"] == 3 and f"| {kind} | {final['si_sdr_imp']:.2f} |" in res.stdout
        assert final["si_sdr_imp"] > 5  # an oracle mask separates two voices well
