"""Stage 6: a publishable model package (asteroid's ``save_publishable``) and a results table."""
import itertools
import json
from datetime import date
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from asteroid.models.publisher import save_publishable

from .config import PAPER_STFT, Conf, stft_sizes


#: SDR improvements (dB) on AVSpeech reported by Ephrat et al. (2018), per condition.
PAPER_SDR_IMP = {"1S_noise": 16.0, "2S_clean": 10.3, "2S_noise": 10.6}
RECIPE_NAME = "asteroid-avspeech/looking-to-listen"


def load_evaluated(exp_dir: Path, condition: str) -> Tuple[Dict[str, float], Dict[str, Any]]:
    """The test metrics of ``condition`` (stage 5's ``final_metrics.json``) and ``best_model.pth``.

    Raises:
        FileNotFoundError: either file is missing (the message names the stage to run).
    """
    exp_dir = Path(exp_dir)
    metrics_file = exp_dir / "eval" / condition / "final_metrics.json"
    model_file = exp_dir / "best_model.pth"
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file} not found: run stage 4 (training) first.")
    if not metrics_file.is_file():
        raise FileNotFoundError(f"{metrics_file} not found: run stage 5 (evaluation) first.")
    metrics = json.loads(metrics_file.read_text())
    package = torch.load(model_file, map_location="cpu", weights_only=True)
    return metrics, package


def publish(exp_dir: Path, conf: Conf, metrics: Dict[str, float], package: Dict[str, Any]) -> Path:
    """Write ``<exp_dir>/publish_dir/model.pth``: ``package`` (``best_model.pth``) with ``metrics``."""
    publish_dir = Path(exp_dir) / "publish_dir"
    save_publishable(str(publish_dir), package, metrics=metrics, train_conf=conf, recipe=RECIPE_NAME)
    return publish_dir / "model.pth"


def conv_stack_label(kernels: List[List[int]], dilations: List[List[int]]) -> str:
    """The audio stream's convs in a few words, e.g. ``1x7, 7x1, 2 x 3x3`` (``small``) or ``1x7, 7x1,
    5x5, 5 x 5x5 dilated, 5x5, 5 x 5x5 dilated`` (``paper``): equal neighbours grouped, ``dilated``
    where a dilation is not 1."""
    layers = [f"{kh}x{kw}" + (" dilated" if max(dilation) > 1 else "")
              for (kh, kw), dilation in zip(kernels, dilations)]
    runs = [(layer, len(list(run))) for layer, run in itertools.groupby(layers)]
    return ", ".join(layer if count == 1 else f"{count} x {layer}" for layer, count in runs)


def experiment_label(tag: str, condition: str, conf: Conf, ended: Optional[Dict[str, Any]] = None,
                     model_args: Optional[Dict[str, Any]] = None) -> str:
    """What a results row was trained and tested with, e.g. ``l2l, synthetic corpus, preset small
    (audio convs 1x7, 7x1, 2 x 3x3), audio-visual (per_speaker fusion), STFT 512/512/256, audio bottleneck
    256, linear masks, loss si_sdr, pit_weight 0.5, speeds 0.9/1/1.1, 4000 steps, 2S_clean`` (the STFT when
    not the paper's 512/400/160, ``audio bottleneck`` when not 0, ``pit_weight`` only for audio-visual
    models, where it is not 0, the training precision when it is not fp32).

    ``ended`` (``best_model.pth``'s record of how training ended) turns the planned steps into
    the steps trained when fewer, e.g. ``2841 of 3200 steps (time cap)``, names exported
    weights that are not the final ones, e.g. ``weights of step 2028 (best validation)``, and
    gives the precision ``auto`` resolved to. ``model_args`` (``best_model.pth``'s) add the audio
    stream's convs to the preset's name: a preset's sizes can change between versions.
    """
    model, training = conf["model"], conf["training"]
    inputs = f"audio-visual ({model['fusion']} fusion)" if model["use_visual"] else "audio-only"
    preset = f"preset {model['preset']}"
    if model_args is not None:
        preset += f" (audio convs {conv_stack_label(model_args['audio_kernels'], model_args['audio_dilations'])})"
    parts = [tag, f"{conf['corpus']['corpus']} corpus", preset, inputs]
    stft = stft_sizes(conf)
    if stft != PAPER_STFT:
        parts.append("STFT " + "/".join(map(str, stft)))
    if model.get("audio_bottleneck"):
        parts.append(f"audio bottleneck {model['audio_bottleneck']}")
    parts += [f"{model['mask_domain']} masks", f"loss {training['loss']}"]
    if model["use_visual"] and training.get("pit_weight"):
        parts.append(f"pit_weight {training['pit_weight']:g}")
    speeds = list(training.get("speed_perturbation") or [1.0])
    if speeds != [1.0]:
        parts.append("speeds " + "/".join(f"{speed:g}" for speed in speeds))
    precision = (ended or {}).get("precision", training.get("precision", "fp32"))
    if precision not in ("fp32", "auto"):  # auto without a record of training: unknown
        parts.append(precision)
    if ended is not None and ended["steps"] < ended["max_steps"]:
        parts.append(f"{ended['steps']} of {ended['max_steps']} steps ({ended['stopped_by']})")
    elif training.get("max_steps"):
        parts.append(f"{training['max_steps']} steps")
    if ended is not None and ended.get("weights") == "best_val":
        parts.append(f"weights of step {ended['weights_step']} (best validation)")
    return ", ".join(parts + [condition])


def results_rows(tag: str, condition: str, metrics: Dict[str, float], conf: Conf,
                 ended: Optional[Dict[str, Any]] = None, model_args: Optional[Dict[str, Any]] = None) -> str:
    """Markdown rows (metric, paper, ours) for one evaluated experiment (``ended``, ``model_args``: see
    :func:`experiment_label`)."""
    paper = PAPER_SDR_IMP.get(condition)
    setting = experiment_label(tag, condition, conf, ended, model_args)
    rows = [f"| {setting} | SDRi (dB) | {paper if paper is not None else '-'} | {metrics.get('sdr_imp', float('nan')):.2f} |",
            f"| {setting} | SI-SDRi (dB) | - | {metrics.get('si_sdr_imp', float('nan')):.2f} |"]
    for key, label in (("stoi", "STOI"), ("pesq", "PESQ"),
                       ("face_order_accuracy", "mixtures with every voice on its own face (share)"),
                       ("probe_swapped_si_sdr", "SI-SDR with faces swapped (dB)"),
                       ("probe_frozen_si_sdr", "SI-SDR with frozen faces (dB)"),
                       ("probe_no_faces_si_sdr", "SI-SDR without faces, best order (dB)")):
        if key in metrics:
            rows.append(f"| {setting} | {label} | - | {metrics[key]:.2f} |")
    return "\n".join(rows) + "\n"


def append_results(results_md: Path, tag: str, condition: str, conf: Conf,
                   metrics: Dict[str, float], package: Dict[str, Any]) -> None:
    """Append this experiment's rows to ``RESULTS.md`` (created with a header when missing).

    ``metrics`` and ``package`` as returned by :func:`load_evaluated`.
    """
    results_md = Path(results_md)
    if not results_md.exists():
        results_md.write_text("# Results\n\nPaper: Ephrat et al. 2018, AVSpeech test set. "
                              "Ours: the test split of the corpus named in each row.\n\n"
                              "| experiment | metric | paper | ours |\n|---|---|---|---|\n")
    with open(results_md, "a") as f:
        f.write(f"| *{date.today().isoformat()}* | | | |\n")
        f.write(results_rows(tag, condition, metrics, conf, package.get("training"), package["model_args"]))
