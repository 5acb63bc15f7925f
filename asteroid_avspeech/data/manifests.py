"""Stage 3: speaker-disjoint splits and fixed, never silently changing val/test mixture manifests.

Outputs in ``<data>/mixtures/`` (see the data formats note):

- ``splits.json``: ``{"train": [youtube ids], "val": [...], "test": [...]}``;
- ``{train,val,test}_clips.csv``: ``clip_id,youtube_id,group,n_samples,n_frames``;
- ``{val,test}_<condition>.csv``: ``mixture_id,n_src,clip_1..N,gain_1..N,noise,noise_gain,scale``;
- ``noise_splits.json`` (with a noise folder): noise files per split, paths relative to it;
- ``infos.json``: dataset name and licences (for ``AVSpeechDataset.get_infos``).

Splits assign whole *groups*: connected sets of clips sharing a YouTube id, or (generated
corpus, ``meta/<clip_id>.json``) a speaker, face or voice. So no speaker, face or voice of
val/test is ever seen in training; :func:`check_disjoint` asserts it again on the result.
Mixtures take their clips from distinct groups. Training mixtures are drawn on the fly by
:class:`~asteroid_avspeech.data.dataset.AVSpeechDataset` (no O(N^2) files).
"""
import csv
import io
import json
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf

from ..io_utils import atomic_path
from . import layout
from ..audio import load_audio
from .audio_prep import wav_path
from .mixing import draw_relative_levels, loop_to_length, mix, noise_gain, rms, source_gains

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
CLIP_TABLE_COLUMNS = ("clip_id", "youtube_id", "group", "n_samples", "n_frames")
NOISE_EXTENSIONS = (".wav", ".flac")
DEFAULT_CONDITIONS = ("2S_clean", "2S_noise", "1S_noise", "3S_clean")
_CONDITION_RE = re.compile(r"^([1-9][0-9]*)S_(clean|noise)$")

AVSPEECH_LICENSE = dict(
    title="AVSpeech: Large-scale Audio-Visual Speech Dataset",
    title_link="https://looking-to-listen.github.io/avspeech/",
    author="Ariel Ephrat et al. (Google Research)",
    author_link="https://looking-to-listen.github.io/",
    license="CC BY 4.0",
    license_link="https://creativecommons.org/licenses/by/4.0/",
    non_commercial=False,
)
GENERATED_LICENSE = dict(
    title="Generated talking-face corpus in the AVSpeech layout (asteroid-avspeech)",
    title_link="",
    author="asteroid-avspeech corpus generator",
    author_link="",
    license="see the corpus: face photos and speech synthesisers carry their own licences",
    license_link="",
    non_commercial=False,
)


class ManifestChangedError(RuntimeError):
    """A stage-3 file exists with other content than a rerun would write."""


class SplitLeakError(RuntimeError):
    """A speaker, face or voice of val/test also occurs in train."""


@dataclass(frozen=True)
class Condition:
    """A mixing condition such as ``2S_noise``: ``n_src`` speakers, with or without noise."""

    name: str
    n_src: int
    noisy: bool


def parse_condition(name: str) -> Condition:
    """``"<n>S_clean"`` or ``"<n>S_noise"`` -> :class:`Condition` (``1S_clean`` is not a mixture)."""
    match = _CONDITION_RE.match(name)
    if match is None or name == "1S_clean":
        raise ValueError(f"Unknown condition {name!r}: use <n>S_clean (n >= 2) or <n>S_noise, e.g. 2S_clean")
    return Condition(name, int(match.group(1)), match.group(2) == "noise")


@dataclass(frozen=True)
class ClipInfo:
    """A clip usable for mixing: audio (stage 1) and visual (stage 2) both present."""

    clip_id: str
    youtube_id: str
    n_samples: int
    n_frames: int
    speaker: str = ""
    face_id: str = ""
    voice_id: str = ""


def _read_table(path: Path, stage: str) -> List[Dict[str, str]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run {stage} first")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_clips(data: Path, corpus: Optional[Path] = None, min_face_ratio: float = 0.0) -> List[ClipInfo]:
    """Clips kept by both stage 1 and stage 2 (sorted by clip id), with their metadata if any.

    Args:
        data: data root holding ``audio/clips.csv`` and ``visual/clips.csv``.
        corpus: corpus root, for ``meta/<clip_id>.json`` (default: ``data``).
        min_face_ratio: drop clips whose face was found in fewer frames than this fraction.
    """
    data = Path(data)
    corpus = Path(corpus) if corpus is not None else data
    audio = {r["clip_id"]: r for r in _read_table(data / "audio" / "clips.csv", "stage 1 (audio)")}
    visual = {r["clip_id"]: r for r in _read_table(data / "visual" / "clips.csv", "stage 2 (visual)")}
    faceless = {c for c, r in visual.items() if float(r["face_ratio"]) < min_face_ratio}
    common = sorted((audio.keys() & visual.keys()) - faceless)
    logger.info(
        "%d clips with audio, %d with visual, %d below face ratio %.2f, %d usable",
        len(audio), len(visual), len(faceless), min_face_ratio, len(common),
    )  # fmt: skip
    clips = []
    for clip_id in common:
        meta_file = layout.meta_path(corpus, clip_id)
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        clips.append(
            ClipInfo(
                clip_id=clip_id,
                youtube_id=layout.youtube_id_of(clip_id),
                n_samples=int(audio[clip_id]["n_samples"]),
                n_frames=int(visual[clip_id]["n_frames"]),
                speaker=str(meta.get("speaker", "")),
                face_id=str(meta.get("face_id", "")),
                voice_id=str(meta.get("voice_id", "")),
            )
        )
    return clips


def _identity_keys(clip: ClipInfo) -> List[str]:
    keys = [f"youtube:{clip.youtube_id}"]
    keys += [f"{kind}:{value}" for kind, value in (("speaker", clip.speaker), ("face", clip.face_id),
                                                   ("voice", clip.voice_id)) if value]  # fmt: skip
    return keys


def group_clips(clips: Sequence[ClipInfo]) -> Dict[str, str]:
    """Clip id -> group: clips sharing a YouTube id, speaker, face or voice (transitively) share a group.

    A group is named by the smallest YouTube id in it.
    """
    parent: Dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for clip in clips:
        keys = _identity_keys(clip)
        for key in keys[1:]:
            a, b = find(keys[0]), find(key)
            if a != b:
                parent[max(a, b)] = min(a, b)
    names: Dict[str, str] = {}
    for clip in clips:
        root = find(_identity_keys(clip)[0])
        names[root] = min(names.get(root, clip.youtube_id), clip.youtube_id)
    return {clip.clip_id: names[find(_identity_keys(clip)[0])] for clip in clips}


def split_groups(
    groups: Sequence[str], val_frac: float, test_frac: float, seed: int, min_groups: int = 1
) -> Dict[str, List[str]]:
    """Assign speaker groups to splits: ``val_frac`` / ``test_frac`` of the groups, deterministic by seed.

    Args:
        groups: speaker group names.
        min_groups: every split with a non-zero fraction (and train) gets at least this many
            groups, so that mixtures of ``min_groups`` distinct speakers can be drawn from it.

    Raises:
        ValueError: too few groups for the requested splits.
    """
    if not (0 <= val_frac and 0 <= test_frac and val_frac + test_frac < 1):
        raise ValueError(f"need 0 <= val_frac, test_frac and val_frac + test_frac < 1, got {val_frac}, {test_frac}")
    names = sorted(set(groups))
    fracs = {"test": test_frac, "val": val_frac}
    counts = {s: max(min_groups, round(f * len(names))) if f > 0 else 0 for s, f in fracs.items()}
    if len(names) - sum(counts.values()) < min_groups:
        raise ValueError(
            f"only {len(names)} speaker groups; {sum(counts.values()) + min_groups} needed (at least "
            f"{min_groups} per split for the largest mixtures): add speakers, lower the number of "
            "sources, or set a split fraction to 0"
        )
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    splits = {"test": order[: counts["test"]], "val": order[counts["test"] : counts["test"] + counts["val"]]}
    splits["train"] = order[counts["test"] + counts["val"] :]
    return {s: sorted(splits[s]) for s in SPLITS}


def check_disjoint(clips: Sequence[ClipInfo], split_of: Dict[str, str]) -> None:
    """Raise :class:`SplitLeakError` if a YouTube id, speaker, face or voice of val/test occurs in train.

    Args:
        split_of: clip id -> split name.
    """
    seen: Dict[str, Dict[str, str]] = {s: {} for s in SPLITS}
    for clip in clips:
        for key in _identity_keys(clip):
            seen[split_of[clip.clip_id]].setdefault(key, clip.clip_id)
    leaks = [
        f"{key} in {split} ({clip_id}) and train ({seen['train'][key]})"
        for split in ("val", "test")
        for key, clip_id in seen[split].items()
        if key in seen["train"]
    ]
    if leaks:
        raise SplitLeakError(
            f"{len(leaks)} identities of val/test also occur in train, e.g. {leaks[:3]}: the corpus "
            "metadata (meta/<clip_id>.json face_id/voice_id/speaker) must let speakers be held out"
        )


def condition_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator fixed by ``seed`` and names (split, condition), independent of Python's hash seed."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def draw_distinct_groups(
    rng: np.random.Generator, groups: Sequence[str], n: int, exclude: Optional[str] = None
) -> List[str]:
    """``n`` different groups from ``groups`` (sorted, unique), none equal to ``exclude``."""
    pool = [g for g in groups if g != exclude]
    if len(pool) < n:
        raise ValueError(f"need {n} distinct speaker groups, only {len(pool)} available")
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def list_noise_files(noise_dir: Path) -> List[str]:
    """Sound files under ``noise_dir`` (recursive), as sorted posix paths relative to it."""
    noise_dir = Path(noise_dir)
    files = sorted(p.relative_to(noise_dir).as_posix() for p in noise_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in NOISE_EXTENSIONS)  # fmt: skip
    if not files:
        raise FileNotFoundError(f"no {'/'.join(NOISE_EXTENSIONS)} files under noise folder {noise_dir}")
    return files


def split_noise(files: Sequence[str], val_frac: float, test_frac: float, seed: int) -> Dict[str, List[str]]:
    """Disjoint noise files per split (at least one each); fewer than 3 files are shared, with a warning."""
    if len(files) < 3:
        logger.warning("only %d noise files: train, val and test share them", len(files))
        return {s: list(files) for s in SPLITS}
    order = [files[i] for i in condition_rng(seed, "noise").permutation(len(files))]
    n_test = min(max(1, round(test_frac * len(files))), len(files) - 2)
    n_val = min(max(1, round(val_frac * len(files))), len(files) - 1 - n_test)
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def read_source(data: Path, clip_id: str, length: int, offset: int = 0) -> np.ndarray:
    """``length`` samples from ``offset`` of the stage-1 wav of ``clip_id``, float32 ``(time,)``."""
    audio, _ = sf.read(str(wav_path(data, clip_id)), start=offset, frames=length, dtype="float32")
    if len(audio) < length:
        audio = np.concatenate([audio, np.zeros(length - len(audio), np.float32)])
    return audio


def manifest_rows(
    data: Path,
    clips: Dict[str, ClipInfo],
    group_of: Dict[str, str],
    split: str,
    condition: Condition,
    n_mixtures: int,
    seed: int,
    noise_dir: Optional[Path] = None,
    noise_files: Sequence[str] = (),
    snr_range: Sequence[float] = (-5.0, 5.0),
    ref_db: float = -25.0,
    noise_factor: float = 0.3,
    peak: float = 0.99,
    sample_rate: int = 16000,
) -> List[List[str]]:
    """Rows of one fixed manifest: ``n_mixtures`` mixtures of clips from distinct groups.

    A mixture is as long as its shortest clip; sources and noise start at sample 0 (noise loops
    if short). Gains and scale are computed on exactly those samples.
    """
    by_group: Dict[str, List[str]] = {}
    for clip_id in sorted(clips):
        by_group.setdefault(group_of[clip_id], []).append(clip_id)
    groups = sorted(by_group)
    rng = condition_rng(seed, split, condition.name)
    noises: Dict[str, np.ndarray] = {}
    rows = []
    for i in range(n_mixtures):
        speakers = draw_distinct_groups(rng, groups, condition.n_src)
        chosen = [by_group[g][rng.integers(len(by_group[g]))] for g in speakers]
        length = min(clips[c].n_samples for c in chosen)
        sources = np.stack([read_source(data, c, length) for c in chosen])
        gains = source_gains(rms(sources), draw_relative_levels(rng, condition.n_src, snr_range), ref_db)
        noise_name, noise, n_gain = "", None, 0.0
        if condition.noisy:
            noise_name = noise_files[rng.integers(len(noise_files))]
            if noise_name not in noises:
                noises[noise_name] = load_audio(Path(noise_dir) / noise_name, sample_rate)
            noise = loop_to_length(noises[noise_name], length)
            n_gain = noise_gain(float(rms(noise)), ref_db, noise_factor)
        *_, scale = mix(sources, gains, noise, n_gain, peak=peak)
        rows.append(
            [f"{split}_{condition.name}_{i:05d}", str(condition.n_src), *chosen, *map(repr, map(float, gains)),
             noise_name, repr(n_gain), repr(scale)]  # fmt: skip
        )
    return rows


def manifest_header(n_src: int) -> List[str]:
    """Header of a manifest of ``n_src``-speaker mixtures."""
    return ["mixture_id", "n_src", *(f"clip_{i + 1}" for i in range(n_src)),
            *(f"gain_{i + 1}" for i in range(n_src)), "noise", "noise_gain", "scale"]  # fmt: skip


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_protected(files: Dict[Path, str]) -> List[Path]:
    """Write text files that must never change silently; returns the paths written.

    Existing files with identical content are left untouched. If any existing file differs,
    nothing is written and :class:`ManifestChangedError` names them all.
    """
    changed = [p for p, text in files.items() if p.exists() and p.read_text() != text]
    if changed:
        names = ", ".join(p.name for p in changed)
        raise ManifestChangedError(
            f"{changed[0].parent}: {names} would change (the clips, split or mixing settings differ from "
            "those that wrote them). Fixed val/test sets never change silently: delete that directory "
            "to regenerate them, or write to another mixtures directory."
        )
    written = []
    for path, text in files.items():
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            written.append(path)
    return written


def corpus_infos(corpus: Path, noise_dir: Optional[Path] = None) -> Dict[str, object]:
    """Dataset name and licences of a corpus (``<corpus>/licenses.json`` if present) and noise folder."""
    corpus = Path(corpus)
    generated = (corpus / "meta").is_dir()
    licenses_file = corpus / "licenses.json"
    if licenses_file.exists():
        licenses = json.loads(licenses_file.read_text())
    else:
        licenses = [GENERATED_LICENSE if generated else AVSPEECH_LICENSE]
    if noise_dir is not None:
        noise_licenses = Path(noise_dir) / "licenses.json"
        licenses = licenses + (json.loads(noise_licenses.read_text()) if noise_licenses.exists() else [
            dict(title=f"noise folder {Path(noise_dir).name}", title_link="", author="", author_link="",
                 license="unknown: check the noise source", license_link="", non_commercial=False)])  # fmt: skip
    return dict(
        dataset="AVSpeech-generated" if generated else "AVSpeech",
        generated=generated,
        licenses=licenses,
        noise_dir=str(Path(noise_dir).resolve()) if noise_dir is not None else None,
    )


def make_mixtures(
    data: Path,
    corpus: Optional[Path] = None,
    out: Optional[Path] = None,
    noise_dir: Optional[Path] = None,
    conditions: Sequence[str] = DEFAULT_CONDITIONS,
    n_val: int = 200,
    n_test: int = 500,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
    snr_range: Sequence[float] = (-5.0, 5.0),
    ref_db: float = -25.0,
    noise_factor: float = 0.3,
    peak: float = 0.99,
    min_face_ratio: float = 0.0,
    sample_rate: int = 16000,
) -> Dict[str, List[str]]:
    """Stage 3: speaker-disjoint splits and fixed val/test manifests in ``out`` (default ``<data>/mixtures``).

    ``val_frac`` and ``test_frac`` are fractions of the speaker groups (not of the clips).

    Deterministic for a seed. Rerunning with the same inputs is a no-op; with inputs that would
    change any split or manifest it raises :class:`ManifestChangedError`.

    Returns:
        The split of YouTube ids (the content of ``splits.json``).
    """
    data = Path(data)
    corpus = Path(corpus) if corpus is not None else data
    out = Path(out) if out is not None else data / "mixtures"
    parsed = [parse_condition(c) for c in conditions]
    if any(c.noisy for c in parsed) and noise_dir is None:
        raise ValueError(f"conditions {[c.name for c in parsed if c.noisy]} need a noise folder (noise_dir)")
    clips = read_clips(data, corpus, min_face_ratio)
    if not clips:
        raise ValueError(f"no clips with both audio and visual features under {data}: run stages 1 and 2")
    group_of = group_clips(clips)
    max_src = max([c.n_src for c in parsed], default=2)
    group_split = split_groups(
        list(group_of.values()), val_frac if n_val else 0.0, test_frac if n_test else 0.0, seed, max_src
    )
    split_of_group = {g: s for s, groups in group_split.items() for g in groups}
    split_of = {c.clip_id: split_of_group[group_of[c.clip_id]] for c in clips}
    check_disjoint(clips, split_of)

    files: Dict[Path, str] = {}
    splits = {s: sorted({c.youtube_id for c in clips if split_of[c.clip_id] == s}) for s in SPLITS}
    files[out / "splits.json"] = json.dumps(splits, indent=1) + "\n"
    for split in SPLITS:
        rows = [[c.clip_id, c.youtube_id, group_of[c.clip_id], str(c.n_samples), str(c.n_frames)]
                for c in clips if split_of[c.clip_id] == split]  # fmt: skip
        files[out / f"{split}_clips.csv"] = _csv_text(CLIP_TABLE_COLUMNS, rows)
    noise_split: Dict[str, List[str]] = {s: [] for s in SPLITS}
    if noise_dir is not None:
        noise_split = split_noise(list_noise_files(noise_dir), val_frac, test_frac, seed)
        files[out / "noise_splits.json"] = json.dumps(noise_split, indent=1) + "\n"
    for split, n_mixtures in (("val", n_val), ("test", n_test)):
        split_clips = {c.clip_id: c for c in clips if split_of[c.clip_id] == split}
        if not split_clips or not n_mixtures:
            logger.warning("no %s mixtures (empty split or n_%s = 0)", split, split)
            continue
        for condition in parsed:
            rows = manifest_rows(
                data, split_clips, group_of, split, condition, n_mixtures, seed, noise_dir,
                noise_split[split], snr_range, ref_db, noise_factor, peak, sample_rate,
            )  # fmt: skip
            files[out / f"{split}_{condition.name}.csv"] = _csv_text(manifest_header(condition.n_src), rows)
    written = write_protected(files)
    with atomic_path(out / "infos.json") as tmp:
        tmp.write_text(json.dumps(corpus_infos(corpus, noise_dir), indent=1) + "\n")
    logger.info(
        "stage 3: %s speakers (groups) train/val/test, %d files written, %d unchanged",
        "/".join(str(len(group_split[s])) for s in SPLITS), len(written), len(files) - len(written),
    )  # fmt: skip
    return splits
