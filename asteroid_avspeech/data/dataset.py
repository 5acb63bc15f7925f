"""AVSpeechDataset: audio-visual mixtures for training (on the fly) and evaluation (fixed manifests)."""
import csv
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio import change_speed, fit_length, load_audio
from .manifests import (
    AVSPEECH_LICENSE,
    draw_distinct_groups,
    list_noise_files,
    parse_condition,
    read_source,
)
from .mixing import draw_relative_levels, loop_to_length, mix, noise_gain, rms, source_gains

VISUAL_FILES = {"lips": "lips.npy", "embeddings": "embeddings.npy"}


class AVSpeechDataset(Dataset):
    """Mixtures of AVSpeech-layout clips with the visual stream of every speaker.

    ``split="train"`` draws mixtures on the fly from ``train_clips.csv``: item ``idx`` mixes clip
    ``idx`` with clips of ``n_src - 1`` other speaker groups, random aligned crops, random relative
    levels in ``snr_range``, a speed drawn from ``speeds`` per source (its audio resampled and its
    video frames picked at that speed, so lips and voice stay in sync) and (noisy conditions) a
    random noise excerpt. With an integer ``seed``
    an item depends only on ``(seed, epoch, idx)``: call :meth:`set_epoch` every epoch for new
    mixtures (with non-persistent DataLoader workers). With ``seed=None`` every access draws a new
    mixture from torch's random generator (reproducible under ``torch.manual_seed`` /
    ``pl.seed_everything(workers=True)``, and new every epoch even with persistent workers).
    ``"val"``/``"test"`` replay the fixed manifests written by stage 3 exactly (crop from the
    start when ``segment`` is set).

    Args:
        mixtures_dir: stage-3 output (``<data>/mixtures``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        condition: ``"<n>S_clean"`` or ``"<n>S_noise"``, e.g. ``"2S_noise"`` (default
            ``"<n_src>S_clean"``).
        n_src: number of speakers (default 2); must agree with ``condition`` when both are given.
        segment: crop length in seconds (rounded to whole video frames); None = whole mixture
            (shortest clip), use batch size 1 then.
        visual: ``"lips"`` (uint8 mouth crops) or ``"embeddings"`` (face embeddings).
        data_dir: data root with ``audio/`` and ``visual/`` (default: parent of ``mixtures_dir``).
        noise_dir: noise folder (default: the one recorded by stage 3 in ``infos.json``).
        n_mixtures: training items per epoch (default: number of training clips).
        speeds: training only: speed factors drawn per source (e.g. ``(0.9, 1.0, 1.1)``: a voice
            10 % lower and slower, unchanged, 10 % higher and faster); ``(1.0,)`` = no perturbation.
        return_id: also return the mixture id (val/test) or the ``+``-joined clip ids (train).

    Items: ``(mixture (time,), sources (n_src, time), visual)`` float32 audio, with
    ``mixture == sources.sum(0) + noise`` exactly, and ``visual`` ``(n_src, frames, S, S)`` uint8
    or ``(n_src, frames, 512)`` float32, ``frames = time * fps / sample_rate``.
    """

    dataset_name = "AVSpeech"

    def __init__(
        self,
        mixtures_dir: Union[str, Path],
        split: str = "train",
        condition: Optional[str] = None,
        n_src: Optional[int] = None,
        segment: Optional[float] = 3.0,
        visual: str = "lips",
        data_dir: Optional[Union[str, Path]] = None,
        noise_dir: Optional[Union[str, Path]] = None,
        sample_rate: int = 16000,
        fps: int = 25,
        snr_range: Sequence[float] = (-5.0, 5.0),
        ref_db: float = -25.0,
        noise_factor: float = 0.3,
        peak: float = 0.99,
        n_mixtures: Optional[int] = None,
        speeds: Sequence[float] = (1.0,),
        seed: Optional[int] = 0,
        return_id: bool = False,
    ):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        if visual not in VISUAL_FILES:
            raise ValueError(f"visual must be one of {list(VISUAL_FILES)}, got {visual!r}")
        self.condition = parse_condition(condition if condition is not None else f"{n_src or 2}S_clean")
        if n_src is not None and n_src != self.condition.n_src:
            raise ValueError(f"n_src={n_src} contradicts condition {self.condition.name!r}")
        self.mixtures_dir = Path(mixtures_dir)
        self.data_dir = Path(data_dir) if data_dir is not None else self.mixtures_dir.parent
        self.split, self.visual = split, visual
        self.n_src = self.condition.n_src
        self.sample_rate, self.fps = sample_rate, fps
        self.snr_range, self.ref_db, self.noise_factor, self.peak = tuple(snr_range), ref_db, noise_factor, peak
        self.seed, self.epoch, self.return_id = seed, 0, return_id
        if not speeds or min(speeds) <= 0:
            raise ValueError(f"speeds must be positive speed factors, got {speeds!r}")
        self.speeds = tuple(float(speed) for speed in speeds)
        self.seg_frames = None if segment is None else max(1, round(segment * fps))
        self.seg_len = None if segment is None else round(self.seg_frames * sample_rate / fps)
        infos_file = self.mixtures_dir / "infos.json"
        self.infos = json.loads(infos_file.read_text()) if infos_file.exists() else {}

        clips = _read_csv(self.mixtures_dir / f"{split}_clips.csv")
        self.n_samples = {c["clip_id"]: int(c["n_samples"]) for c in clips}
        if split == "train":
            usable = [c for c in clips if self.seg_len is None or int(c["n_samples"]) >= self.seg_len]
            self.clips = [c["clip_id"] for c in usable]
            self.group_of = {c["clip_id"]: c["group"] for c in usable}
            self.by_group: Dict[str, List[str]] = {}
            for clip_id in self.clips:
                self.by_group.setdefault(self.group_of[clip_id], []).append(clip_id)
            self.groups = sorted(self.by_group)
            if len(self.groups) < self.n_src:
                raise ValueError(
                    f"{len(self.groups)} training speaker groups with clips >= {segment} s in "
                    f"{self.mixtures_dir}; {self.condition.name} needs {self.n_src}: shorten segment"
                )
            self.n_mixtures = n_mixtures if n_mixtures is not None else len(self.clips)
            used = self.clips
        else:
            manifest = self.mixtures_dir / f"{split}_{self.condition.name}.csv"
            rows = _read_csv(manifest)
            self.mixtures = [r for r in rows if self.seg_len is None or self._length(r) >= self.seg_len]
            if not self.mixtures:
                raise ValueError(f"no mixture in {manifest} is at least {segment} s long: lower segment or pass None")
            used = sorted({r[f"clip_{i + 1}"] for r in self.mixtures for i in range(self.n_src)})
        self.noise_dir = Path(noise_dir) if noise_dir is not None else None
        if self.condition.noisy:
            if self.noise_dir is None and self.infos.get("noise_dir"):
                self.noise_dir = Path(self.infos["noise_dir"])
            if self.noise_dir is None:
                raise ValueError(f"{self.condition.name} needs noise_dir (none recorded in {infos_file})")
            noise_splits = self.mixtures_dir / "noise_splits.json"
            if noise_splits.exists():
                self.noise_files = json.loads(noise_splits.read_text())[split]
            else:
                self.noise_files = list_noise_files(self.noise_dir)
        self._noise_cache: Dict[str, np.ndarray] = {}
        self._check_files(used)

    def _length(self, row: Dict[str, str]) -> int:
        return min(self.n_samples[row[f"clip_{i + 1}"]] for i in range(self.n_src))

    def _visual_file(self, clip_id: str) -> Path:
        return self.data_dir / "visual" / clip_id / VISUAL_FILES[self.visual]

    def _check_files(self, clip_ids: Sequence[str]) -> None:
        """Fail early, naming the clip and the stage to rerun, if a wav or visual file is missing."""
        for clip_id in clip_ids:
            wav = self.data_dir / "audio" / f"{clip_id}.wav"
            if not wav.exists():
                raise FileNotFoundError(f"audio of clip {clip_id} missing ({wav}): rerun stage 1 (audio)")
            visual = self._visual_file(clip_id)
            if not visual.exists():
                hint = " with face embeddings enabled" if self.visual == "embeddings" else ""
                raise FileNotFoundError(
                    f"visual features of clip {clip_id} missing ({visual}): rerun stage 2 (visual){hint}"
                )

    def set_epoch(self, epoch: int) -> None:
        """Select the training mixtures of ``epoch`` (with an integer seed)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_mixtures if self.split == "train" else len(self.mixtures)

    def mixture_id(self, idx: int) -> str:
        """Name of item ``idx``: the manifest's ``mixture_id`` (val/test), else split, epoch and index."""
        if self.split == "train":
            return f"train_{self.condition.name}_e{self.epoch}_{idx:06d}"
        return self.mixtures[idx]["mixture_id"]

    def __getitem__(self, idx: int) -> Tuple:
        if not 0 <= idx < len(self):
            raise IndexError(f"item {idx} of a dataset of {len(self)}")
        if self.split == "train":
            mixture, sources, clip_ids, frames = self._train_item(idx)
            item_id = "+".join(clip_ids)
        else:
            mixture, sources, clip_ids, frames = self._fixed_item(idx)
            item_id = self.mixture_id(idx)
        visual = np.stack([self._load_visual(c, f) for c, f in zip(clip_ids, frames)])
        out = (torch.from_numpy(mixture), torch.from_numpy(sources), torch.from_numpy(visual))
        return out + (item_id,) if self.return_id else out

    def _n_frames(self, length: int) -> int:
        return round(length * self.fps / self.sample_rate)

    def _train_item(self, idx: int) -> Tuple[np.ndarray, np.ndarray, List[str], List[np.ndarray]]:
        seed = [self.seed, self.epoch, idx] if self.seed is not None else int(torch.randint(2**62, ()).item())
        rng = np.random.default_rng(seed)
        first = self.clips[idx % len(self.clips)]
        others = draw_distinct_groups(rng, self.groups, self.n_src - 1, exclude=self.group_of[first])
        clip_ids = [first] + [self.by_group[g][rng.integers(len(self.by_group[g]))] for g in others]
        length = self.seg_len if self.seg_len is not None else min(self.n_samples[c] for c in clip_ids)
        frames, sources = [], []
        for clip_id in clip_ids:
            # one speed draws nothing: without perturbation the random stream is the one before it existed
            speed = float(rng.choice(self.speeds)) if len(self.speeds) > 1 else self.speeds[0]
            span = round(length * speed)  # samples of the clip that become `length` samples
            if span > self.n_samples[clip_id]:
                speed, span = 1.0, length
            max_frame = int((self.n_samples[clip_id] - span) * self.fps // self.sample_rate)
            first_frame = int(rng.integers(max_frame + 1))
            audio = read_source(self.data_dir, clip_id, span, round(first_frame * self.sample_rate / self.fps))
            if speed != 1.0:
                audio = fit_length(change_speed(audio, speed, self.sample_rate), length)
            sources.append(audio)
            frames.append(first_frame + np.floor(np.arange(self._n_frames(length)) * speed).astype(np.int64))
        sources = np.stack(sources)
        gains = source_gains(rms(sources), draw_relative_levels(rng, self.n_src, self.snr_range), self.ref_db)
        noise, n_gain = None, 0.0
        if self.condition.noisy:
            name = self.noise_files[rng.integers(len(self.noise_files))]
            full = self._noise(name)
            noise = loop_to_length(full, length, int(rng.integers(len(full))))
            n_gain = noise_gain(float(rms(noise)), self.ref_db, self.noise_factor)
        mixture, scaled, _, _ = mix(sources, gains, noise, n_gain, peak=self.peak)
        return mixture, scaled, clip_ids, frames

    def _fixed_item(self, idx: int) -> Tuple[np.ndarray, np.ndarray, List[str], List[np.ndarray]]:
        row = self.mixtures[idx]
        clip_ids = [row[f"clip_{i + 1}"] for i in range(self.n_src)]
        full_length = self._length(row)
        sources = np.stack([read_source(self.data_dir, c, full_length) for c in clip_ids])
        gains = np.array([float(row[f"gain_{i + 1}"]) for i in range(self.n_src)])
        noise = loop_to_length(self._noise(row["noise"]), full_length) if row["noise"] else None
        mixture, scaled, _, _ = mix(sources, gains, noise, float(row["noise_gain"]), scale=float(row["scale"]))
        if self.seg_len is not None:
            mixture, scaled = mixture[: self.seg_len], scaled[:, : self.seg_len]
        return mixture, scaled, clip_ids, [np.arange(self._n_frames(mixture.shape[-1]))] * self.n_src

    def _noise(self, name: str) -> np.ndarray:
        if name not in self._noise_cache:
            self._noise_cache[name] = load_audio(self.noise_dir / name, self.sample_rate)
        return self._noise_cache[name]

    def _load_visual(self, clip_id: str, frames: np.ndarray) -> np.ndarray:
        """The visual frames ``frames`` (increasing indices) of ``clip_id``; frames past the end are zeros."""
        array = np.load(self._visual_file(clip_id), mmap_mode="r")
        crop = fit_length(np.asarray(array[frames[frames < len(array)]]), len(frames))
        return crop.astype(np.float32) if self.visual == "embeddings" else crop

    def get_infos(self) -> Dict[str, object]:
        """Dataset infos (for publishing models): ``dataset``, ``task`` and ``licenses``."""
        return dict(
            dataset=self.infos.get("dataset", self.dataset_name),
            task="sep_noisy" if self.condition.noisy else "sep_clean",
            licenses=self.infos.get("licenses", [AVSPEECH_LICENSE]),
        )


def _read_csv(path: Path) -> List[Dict[str, str]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run stage 3 (local/make_mixtures.py) for this condition")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
