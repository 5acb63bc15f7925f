"""Stage 2 over a tiny corpus: outputs, drops, resume, atomic clip directories, CLI."""
import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from asteroid_avspeech.data import visual_features as vf
from asteroid_avspeech.data.visual_features import VisualConfig, extract_visual, write_clip_dir
from video_fixtures import (  # noqa: F401  (pytest fixtures)
    add_to_corpus,
    face_clip,
    half_face_clip,
    noise_clip,
    silent_clip,
    truncated_clip,
    two_face_clip,
    video_dir,
)

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf.yml"
sys.path.insert(0, str(REPO / "local"))
import extract_visual as cli  # noqa: E402

KEPT = {"face": "AAAAAAAAAAA", "right": "BBBBBBBBBBB", "silent": "GGGGGGGGGGG"}
DROPPED = {
    "noise": ("CCCCCCCCCCC", "no_face"),
    "truncated": ("DDDDDDDDDDD", "unreadable"),
    "missing": ("EEEEEEEEEEE", "unreadable"),
    "half": ("FFFFFFFFFFF", "too_many_missing"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, face_clip, two_face_clip, silent_clip, noise_clip, truncated_clip, half_face_clip):
    root = tmp_path_factory.mktemp("corpus")
    ids = {
        "face": add_to_corpus(root, KEPT["face"], face_clip, (0.5, 0.5)),
        "right": add_to_corpus(root, KEPT["right"], two_face_clip, (0.75, 0.45)),
        "silent": add_to_corpus(root, KEPT["silent"], silent_clip, (0.5, 0.5), seconds=0.4),
        "noise": add_to_corpus(root, DROPPED["noise"][0], noise_clip, (0.5, 0.5)),
        "truncated": add_to_corpus(root, DROPPED["truncated"][0], truncated_clip, (0.5, 0.5)),
        "missing": add_to_corpus(root, DROPPED["missing"][0], None, (0.5, 0.5)),
        "half": add_to_corpus(root, DROPPED["half"][0], half_face_clip, (0.5, 0.5)),
    }
    return root, ids


@pytest.fixture(scope="module")
def first_run(corpus):
    root, ids = corpus
    summary = extract_visual(root, config=VisualConfig(lip_size=32, detect_every=12))
    return root, ids, summary


def _rows(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_outputs_follow_the_data_format(first_run):
    root, ids, summary = first_run
    assert summary.kept == 3
    clips = {r["clip_id"]: r for r in _rows(root / "visual" / "clips.csv")}
    assert set(clips) == {ids[k] for k in KEPT}
    assert list(_rows(root / "visual" / "clips.csv")[0]) == list(vf.CLIPS_HEADER)
    row = clips[ids["face"]]
    assert row["youtube_id"] == KEPT["face"] and row["n_frames"] == "25" and float(row["face_ratio"]) == 1.0
    clip_dir = root / row["path"]
    assert clip_dir == root / "visual" / ids["face"]
    lips = np.load(clip_dir / "lips.npy")
    assert lips.shape == (25, 32, 32) and lips.dtype == np.uint8 and lips.std() > 5
    mask = np.load(clip_dir / "mask.npy")
    assert mask.shape == (25,) and mask.dtype == bool and mask.all()
    boxes = np.load(clip_dir / "boxes.npy")
    assert boxes.shape == (25, 4) and boxes.dtype == np.float32
    landmarks = np.load(clip_dir / "landmarks.npy")
    assert landmarks.shape == (25, 5, 2) and landmarks.dtype == np.float32
    assert not (clip_dir / "faces.npy").exists() and not (clip_dir / "embeddings.npy").exists()
    # the silent clip is 0.4 s: 10 frames; video without audio is fine for stage 2
    assert clips[ids["silent"]]["n_frames"] == "10"


def test_hint_picks_the_right_face(first_run):
    root, ids, _ = first_run
    boxes = np.load(root / "visual" / ids["right"] / "boxes.npy")
    assert np.all((boxes[:, 0] + boxes[:, 2]) / 2 > 256)  # Grace Hopper, right half of 512


def test_bad_clips_are_logged_in_dropped_csv(first_run):
    root, ids, summary = first_run
    dropped = {r["clip_id"]: r["reason"] for r in _rows(root / "visual" / "dropped.csv")}
    for name, (_, code) in DROPPED.items():
        assert dropped[ids[name]].startswith(code + ":"), dropped[ids[name]]
        assert not (root / "visual" / ids[name]).exists()
    assert "truncated" in dropped[ids["truncated"]] or ".mp4" in dropped[ids["truncated"]]
    assert summary.dropped == {"no_face": 1, "unreadable": 2, "too_many_missing": 1}


def test_resume_does_no_work(first_run, monkeypatch, capsys):
    root, _, _ = first_run

    def fail(*args, **kwargs):
        raise AssertionError("a complete clip was processed again")

    monkeypatch.setattr(vf, "clip_features", fail)
    argv = ["--conf", str(CONF), "--corpus_dir", str(root), "--data_dir", str(root), "--lip-size", "32"]
    monkeypatch.setattr(sys, "argv", ["extract_visual.py"] + argv)
    cli.main()
    out = capsys.readouterr().out
    assert "3 clips kept (3 already done), 4 dropped" in out
    assert len(_rows(root / "visual" / "clips.csv")) == 3
    # asking for embeddings without weights is a clear error, not a crash later in training
    monkeypatch.setattr(sys, "argv", ["extract_visual.py"] + argv + ["--visual_input", "embeddings"])
    with pytest.raises(SystemExit, match="needs FaceNet weights"):
        cli.main()


def test_atomic_clip_directory(tmp_path, monkeypatch):
    features = {"lips": np.zeros((2, 8, 8), np.uint8), "mask": np.ones(2, bool)}
    real_save = np.save
    calls = []

    def flaky_save(path, array):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real_save(path, array)

    monkeypatch.setattr(vf.np, "save", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        write_clip_dir(tmp_path / "clip", features)
    assert list(tmp_path.iterdir()) == []  # neither the clip dir nor a temp dir is left
    monkeypatch.setattr(vf.np, "save", real_save)
    write_clip_dir(tmp_path / "clip", features)
    assert sorted(p.name for p in (tmp_path / "clip").iterdir()) == ["lips.npy", "mask.npy"]


def test_interrupted_run_leaves_no_partial_dir(face_clip, tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    clip_id = add_to_corpus(root, KEPT["face"], face_clip, (0.5, 0.5))
    out = root / "visual"
    leftover = out / f"{vf.TEMP_DIR_PREFIX}{clip_id}-killed"  # from a run killed with SIGKILL
    leftover.mkdir(parents=True)
    real_save = np.save
    calls = []

    def crash_on_third_file(path, array):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_save(path, array)

    config = VisualConfig(lip_size=16, detect_every=12)
    monkeypatch.setattr(vf.np, "save", crash_on_third_file)
    with pytest.raises(KeyboardInterrupt):
        extract_visual(root, config=config)
    monkeypatch.undo()
    assert not (out / clip_id).exists()
    assert list(out.glob(f"{vf.TEMP_DIR_PREFIX}*")) == []  # its own temp dir and the old leftover
    summary = extract_visual(root, config=config)
    assert summary.kept == 1 and summary.already_done == 0
    assert np.load(out / clip_id / "lips.npy").shape == (25, 16, 16)


def test_parallel_workers_and_config_change(face_clip, noise_clip, tmp_path):
    root = tmp_path / "corpus"
    face = add_to_corpus(root, KEPT["face"], face_clip, (0.5, 0.5))
    add_to_corpus(root, DROPPED["noise"][0], noise_clip, (0.5, 0.5))
    summary = extract_visual(root, config=VisualConfig(lip_size=16), workers=2)
    assert summary.kept == 1 and summary.dropped == {"no_face": 1}
    # another lip size makes the stored clip incomplete for this config: it is redone in place
    summary = extract_visual(root, config=VisualConfig(lip_size=24, save_faces=True))
    assert summary.kept == 1 and summary.already_done == 0 and summary.dropped == {"no_face": 1}
    assert np.load(root / "visual" / face / "lips.npy").shape == (25, 24, 24)
    assert np.load(root / "visual" / face / "faces.npy").shape == (25, 160, 160, 3)


def test_embeddings_are_zero_where_the_face_is_missing(half_face_clip):
    task = vf.ClipTask("AAAAAAAAAAA_00000000_00001000", half_face_clip, (0.5, 0.5), n_frames=27)
    config = VisualConfig(lip_size=16, detect_every=12, max_missing_ratio=1.0)

    def embedder(faces):  # stands in for FaceNet: checks its input, returns unit vectors
        assert faces.dtype == np.uint8 and faces.shape[1:] == (160, 160, 3) and faces.std() > 5
        return np.full((len(faces), 512), 1 / np.sqrt(512), np.float32)

    features = vf.clip_features(task, vf.FaceTracker(detect_every=12), config, embedder)
    mask = features["mask"]
    assert mask.shape == (27,) and mask[0] and not mask[12:].any()  # 2 padded frames count as missing
    emb = features["embeddings"]
    assert emb.shape == (27, 512) and emb.dtype == np.float16
    assert np.all(emb[~mask] == 0) and np.allclose(emb[mask].astype(np.float32) ** 2 @ np.ones(512), 1, atol=1e-2)
    assert np.all(features["lips"][~mask] == 0) and "faces" not in features
