"""Mixing rules and stage 3: speaker-disjoint splits, exact sums, fixed and protected manifests."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pytest
import soundfile as sf
import yaml

from asteroid_avspeech.data import layout
from asteroid_avspeech.data.audio_prep import write_wav
from asteroid_avspeech.data.manifests import (
    ClipInfo,
    ManifestChangedError,
    SplitLeakError,
    check_disjoint,
    group_clips,
    make_mixtures,
    parse_condition,
    read_source,
)
from asteroid_avspeech.data.mixing import draw_relative_levels, mix, rms, source_gains

REPO = Path(__file__).resolve().parents[1]
SR, FPS, LIP = 16000, 25, 8


def staircase(n_samples: int, seed: int) -> np.ndarray:
    """Audio whose level encodes the video frame index: frame f holds +-(f + 1) * c (noise signs)."""
    frame = np.arange(n_samples) * FPS // SR
    signs = np.sign(np.random.default_rng(seed).standard_normal(n_samples))
    return (signs * (frame + 1) * 0.5 / (frame[-1] + 1)).astype(np.float32)


def make_data_root(root: Path, speakers: Sequence[str], clips_per_speaker: int = 2,
                   meta: Dict[str, Dict[str, str]] = None) -> Path:  # fmt: skip
    """Stage-1/2 outputs for ``speakers`` (YouTube ids): staircase wavs and lips whose pixel (0, 0) is
    the frame index and (0, 1) the clip number. ``meta``: youtube id -> face_id/voice_id/speaker."""
    audio_rows, visual_rows = [], []
    number = 0
    for youtube_id in speakers:
        for k in range(clips_per_speaker):
            seconds = 2.0 + 0.4 * ((number + k) % 2)
            clip_id = layout.make_clip_id(youtube_id, 10.0 * k, 10.0 * k + seconds)
            n_samples, n_frames = round(seconds * SR), round(seconds * FPS)
            write_wav(root / "audio" / f"{clip_id}.wav", staircase(n_samples, number), SR)
            lips = np.zeros((n_frames, LIP, LIP), np.uint8)
            lips[:, 0, 0], lips[:, 0, 1] = np.arange(n_frames), number
            (root / "visual" / clip_id).mkdir(parents=True)
            np.save(root / "visual" / clip_id / "lips.npy", lips)
            audio_rows.append([clip_id, youtube_id, n_samples, -20.0, f"audio/{clip_id}.wav"])
            visual_rows.append([clip_id, youtube_id, n_frames, 1.0, f"visual/{clip_id}"])
            if meta is not None:
                layout.meta_path(root, clip_id).parent.mkdir(exist_ok=True)
                layout.meta_path(root, clip_id).write_text(json.dumps(dict(youtube_id=youtube_id, **meta[youtube_id])))
            number += 1
    for stage, header, rows in (("audio", "clip_id,youtube_id,n_samples,rms_db,path", audio_rows),
                                ("visual", "clip_id,youtube_id,n_frames,face_ratio,path", visual_rows)):  # fmt: skip
        with open(root / stage / "clips.csv", "w", newline="") as f:
            f.write(header + "\n")
            csv.writer(f).writerows(rows)
    return root


def make_noise_dir(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for i in range(3):
        write_wav(root / f"noise_{i}.wav", 0.1 * rng.standard_normal(SR).astype(np.float32), SR)
    (root / "sub").mkdir()
    sf.write(str(root / "sub" / "stereo44k.wav"), 0.05 * rng.standard_normal((44100, 2)), 44100)
    return root


SPEAKERS = [f"speaker{i:04d}" for i in range(12)]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data") / "data root", SPEAKERS)


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory) -> Path:
    return make_noise_dir(tmp_path_factory.mktemp("noise"))


def run_stage3(data_root, out, noise_dir, **kwargs):
    args = dict(n_val=6, n_test=8, val_frac=0.2, test_frac=0.2, seed=3)
    args.update(kwargs)
    return make_mixtures(data_root, out=out, noise_dir=noise_dir, **args)


@pytest.fixture(scope="module")
def mixtures(data_root, noise_dir) -> Path:
    run_stage3(data_root, data_root / "mixtures", noise_dir)
    return data_root / "mixtures"


def read_rows(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_mix_is_exact_sum_with_common_rescale():
    rng = np.random.default_rng(0)
    sources = rng.uniform(-1, 1, (3, 1000)).astype(np.float32)
    noise = rng.uniform(-1, 1, 1000).astype(np.float32)
    gains = np.array([0.9, 1.7, 0.4])
    mixture, scaled, scaled_noise, scale = mix(sources, gains, noise, 0.5, peak=0.99)
    assert np.array_equal(mixture, scaled.sum(0) + scaled_noise)  # exact, no averaging
    np.testing.assert_allclose(mixture, scale * ((gains[:, None] * sources).sum(0) + 0.5 * noise), atol=1e-6)
    np.testing.assert_allclose(scaled, scale * gains[:, None] * sources, atol=1e-6)
    assert 0 < scale < 1 and np.abs(mixture).max() == pytest.approx(0.99, abs=1e-6)
    quiet, _, _, unit = mix(sources * 0.01, np.ones(3))
    assert unit == 1.0 and np.array_equal(quiet, (sources * 0.01).astype(np.float32).sum(0))
    replay = mix(sources, gains, noise, 0.5, scale=scale)
    assert all(np.array_equal(a, b) for a, b in zip(replay[:3], (mixture, scaled, scaled_noise)))


def test_gains_follow_relative_levels():
    rng = np.random.default_rng(0)
    levels = draw_relative_levels(rng, 4, (-5, 5))
    assert levels[0] == 0 and np.all(np.abs(levels[1:]) <= 5)
    sources = rng.standard_normal((4, 16000)) * np.array([[0.01], [0.1], [0.5], [1.0]])
    gains = source_gains(rms(sources), levels, ref_db=-25.0)
    np.testing.assert_allclose(20 * np.log10(rms(gains[:, None] * sources)), -25.0 + levels)


def test_conditions():
    assert parse_condition("3S_clean").n_src == 3 and parse_condition("1S_noise").noisy
    for bad in ("1S_clean", "2S", "two_speakers", "0S_noise"):
        with pytest.raises(ValueError, match="condition"):
            parse_condition(bad)


def test_splits_are_speaker_disjoint(mixtures, data_root):
    splits = json.loads((mixtures / "splits.json").read_text())
    sets = {s: set(v) for s, v in splits.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert sets["train"] | sets["val"] | sets["test"] == set(SPEAKERS)
    assert len(sets["test"]) >= 3 and len(sets["val"]) >= 3  # enough speakers for 3S_clean
    for split in ("train", "val", "test"):
        assert {r["youtube_id"] for r in read_rows(mixtures / f"{split}_clips.csv")} == sets[split]


def test_manifests_mix_distinct_speakers_of_their_split(mixtures):
    splits = json.loads((mixtures / "splits.json").read_text())
    noise = json.loads((mixtures / "noise_splits.json").read_text())
    assert not set(noise["test"]) & set(noise["train"]) and "sub/stereo44k.wav" in sum(noise.values(), [])
    for split, n_mixtures in (("val", 6), ("test", 8)):
        for condition, n_src in (("2S_clean", 2), ("2S_noise", 2), ("1S_noise", 1), ("3S_clean", 3)):
            rows = read_rows(mixtures / f"{split}_{condition}.csv")
            assert len(rows) == n_mixtures and list(rows[0])[: 2 + n_src] == (
                ["mixture_id", "n_src"] + [f"clip_{i + 1}" for i in range(n_src)])  # fmt: skip
            for row in rows:
                speakers = [layout.youtube_id_of(row[f"clip_{i + 1}"]) for i in range(n_src)]
                assert len(set(speakers)) == n_src and set(speakers) <= set(splits[split])
                assert (row["noise"] in noise[split]) == condition.endswith("noise")
                assert (float(row["noise_gain"]) > 0) == condition.endswith("noise")


def test_manifest_replay_levels_and_peak(mixtures, data_root):
    for row in read_rows(mixtures / "test_2S_clean.csv"):
        clips = [row["clip_1"], row["clip_2"]]
        length = min(sf.info(str(data_root / "audio" / f"{c}.wav")).frames for c in clips)
        sources = np.stack([read_source(data_root, c, length) for c in clips])
        gains = np.array([float(row["gain_1"]), float(row["gain_2"])])
        mixture, scaled, _, _ = mix(sources, gains, scale=float(row["scale"]))
        assert np.abs(mixture).max() <= 0.99 + 1e-6
        assert np.array_equal(mixture, scaled.sum(0))
        assert abs(20 * np.log10(rms(scaled[1]) / rms(scaled[0]))) <= 5 + 1e-6


def test_deterministic_and_protected(tmp_path, data_root, noise_dir, mixtures):
    copy = tmp_path / "copy"  # the same settings through the entry point, as run.sh calls it
    shutil.copytree(data_root / "audio", copy / "audio")
    shutil.copytree(data_root / "visual", copy / "visual")
    conf = tmp_path / "conf.yml"
    conf.write_text(yaml.safe_dump(dict(
        corpus=dict(corpus_dir=str(copy), noise_dir=str(noise_dir), seed=3),
        data=dict(data_dir=str(copy), sample_rate=SR),
        mixtures=dict(snr_range=[-5.0, 5.0], noise_gain=0.3, val_fraction=0.2, test_fraction=0.2,
                      n_val_mixtures=6, n_test_mixtures=8))))  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, str(REPO / "local" / "make_mixtures.py"), "--conf", str(conf)],
                   env=env, check=True, capture_output=True)  # fmt: skip
    for path in mixtures.glob("*.*"):
        if path.name != "infos.json":
            assert (copy / "mixtures" / path.name).read_text() == path.read_text(), path.name
    before = {p.name: p.stat().st_mtime_ns for p in mixtures.glob("*.csv")}
    run_stage3(data_root, mixtures, noise_dir)  # same content: no-op
    assert before == {p.name: p.stat().st_mtime_ns for p in mixtures.glob("*.csv")}
    test_manifest = (mixtures / "test_2S_clean.csv").read_text()
    with pytest.raises(ManifestChangedError, match="delete"):
        run_stage3(data_root, mixtures, noise_dir, snr_range=(-2.0, 2.0))
    with pytest.raises(ManifestChangedError):
        run_stage3(data_root, mixtures, noise_dir, seed=4)
    assert (mixtures / "test_2S_clean.csv").read_text() == test_manifest
    run_stage3(data_root, tmp_path / "other", noise_dir, seed=4)
    assert (tmp_path / "other" / "test_2S_clean.csv").read_text() != test_manifest


def test_generated_corpus_holds_out_faces_and_voices(tmp_path):
    speakers = [f"genSpeakr{i:02d}" for i in range(16)]
    # pairs of speakers share a face, and speakers 4 and 8 share a voice: both must land in one split
    meta = {s: dict(speaker=f"spk{i}", face_id=f"face{i // 2}", voice_id=f"voice{4 if i == 8 else i}")
            for i, s in enumerate(speakers)}  # fmt: skip
    root = make_data_root(tmp_path / "gen", speakers, clips_per_speaker=1, meta=meta)
    run_stage3(root, root / "mixtures", None, conditions=["2S_clean"], n_val=2, n_test=2, val_frac=0.2, test_frac=0.2)
    splits = json.loads((root / "mixtures" / "splits.json").read_text())
    split_of = {s: name for name, ids in splits.items() for s in ids}
    for i in range(0, 16, 2):
        assert split_of[speakers[i]] == split_of[speakers[i + 1]]
    assert split_of[speakers[4]] == split_of[speakers[8]]
    infos = json.loads((root / "mixtures" / "infos.json").read_text())
    assert infos["generated"] and infos["licenses"][0]["license"] != "CC BY 4.0"


def test_leak_check_raises():
    clips = [ClipInfo("aaaaaaaaaaa_00000000_00002000", "aaaaaaaaaaa", 1, 1, face_id="f1", voice_id="v1"),
             ClipInfo("bbbbbbbbbbb_00000000_00002000", "bbbbbbbbbbb", 1, 1, face_id="f1", voice_id="v2")]  # fmt: skip
    assert len(set(group_clips(clips).values())) == 1
    with pytest.raises(SplitLeakError, match="face:f1"):
        check_disjoint(clips, {clips[0].clip_id: "train", clips[1].clip_id: "test"})
    check_disjoint(clips, {clips[0].clip_id: "test", clips[1].clip_id: "test"})


def test_clear_errors(tmp_path, data_root):
    with pytest.raises(ValueError, match="noise folder"):
        make_mixtures(data_root, out=tmp_path / "m", conditions=["2S_noise"])
    small = make_data_root(tmp_path / "small", SPEAKERS[:4], clips_per_speaker=1)
    with pytest.raises(ValueError, match="speaker groups"):
        make_mixtures(small, conditions=["3S_clean"], val_frac=0.2, test_frac=0.2)
    (small / "visual" / "clips.csv").unlink()
    with pytest.raises(FileNotFoundError, match="stage 2"):
        make_mixtures(small, conditions=["2S_clean"])
