"""Stage 2: per-clip visual features (face track, lip crops, optional face crops / embeddings).

For every row of the corpus CSV the clip is decoded twice in bounded-memory chunks (once to
track the faces on keyframes, once to crop), the face at AVSpeech's ``(x, y)`` hint is kept,
and ``<out_dir>/<clip_id>/`` is written as a temporary directory renamed into place, so a
directory that exists is complete. Output (see the agreed data formats)::

    <out_dir>/<clip_id>/lips.npy        uint8 (frames, S, S)     grayscale levelled mouth crops
    <out_dir>/<clip_id>/mask.npy        bool (frames,)           True = face detected/tracked
    <out_dir>/<clip_id>/boxes.npy       float32 (frames, 4)      x1, y1, x2, y2 pixels
    <out_dir>/<clip_id>/landmarks.npy   float32 (frames, 5, 2)   MTCNN 5 points, pixels
    <out_dir>/<clip_id>/faces.npy       uint8 (frames, 160, 160, 3)   only with save_faces
    <out_dir>/<clip_id>/embeddings.npy  float16 (frames, 512)    only with FaceNet weights
    <out_dir>/clips.csv                 clip_id,youtube_id,n_frames,face_ratio,path
    <out_dir>/dropped.csv               clip_id,reason

``frames = round((end - start) * fps)`` from the CSV row, so features align with the stage-1
audio of the same row; frames the file lacks count as missing. ``out_dir`` is
``<data root>/visual`` and ``path`` in clips.csv is relative to the data root
(``visual/<clip_id>``), as stage 1 does for ``audio/``. The run is resumable: complete
directories and previously dropped clips are skipped.
"""
import csv
import logging
import math
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from ..audio import fit_length
from ..io_utils import TEMP_DIR_PREFIX, atomic_dir, atomic_path
from ..parallel import one_thread, worker_pool
from ..video.crops import LIP_SIZE, crop_tracks
from ..video.decode import DEFAULT_FPS, VideoReadError, iter_frame_chunks
from ..video.embeddings import EMBEDDING_DIM, FaceEmbedder, load_face_embedder
from ..video.faces import FaceDetector, FaceTracker
from . import layout
from .download import read_avspeech_csv

logger = logging.getLogger(__name__)

CLIPS_HEADER = ("clip_id", "youtube_id", "n_frames", "face_ratio", "path")
DROPPED_HEADER = ("clip_id", "reason")
UNREADABLE, NO_FACE, TOO_MANY_MISSING = "unreadable", "no_face", "too_many_missing"


@dataclass
class VisualConfig:
    """Settings of stage 2 (conf.yml ``visual`` section).

    Attributes:
        fps: frame rate of the features (video is re-timed to it).
        lip_size: side ``S`` of the lip crops.
        lip_scale: lip crop side in units of max(eye distance, mouth width).
        detect_every: MTCNN runs on every ``detect_every``-th frame; boxes are interpolated between.
        max_missing_ratio: clips whose hinted face is missing on more frames than this are dropped.
        save_faces: also store the 160x160 face crops.
        facenet_weights: InceptionResnetV1 state_dict for embeddings (skipped if None / missing).
        device: torch device for MTCNN and FaceNet.
    """

    fps: float = DEFAULT_FPS
    lip_size: int = LIP_SIZE
    lip_scale: float = 1.3
    detect_every: int = 10
    max_missing_ratio: float = 0.2
    save_faces: bool = False
    facenet_weights: Optional[str] = None
    device: str = "cpu"


class ClipDropped(Exception):
    """A clip is left out of the corpus, for ``reason`` (one of the drop codes) and ``detail``."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass
class ClipTask:
    """One row of the corpus CSV, resolved: the mp4, the face hint, the expected frame count."""

    clip_id: str
    path: Path
    hint: Tuple[float, float]
    n_frames: int


@dataclass
class Summary:
    """Outcome of a stage-2 run (counts of clips)."""

    kept: int = 0
    already_done: int = 0
    dropped: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items())) or "none"
        return (
            f"visual features: {self.kept} clips kept ({self.already_done} already done), "
            f"{sum(self.dropped.values())} dropped ({drops})"
        )


def read_tasks(corpus: Path, fps: float = DEFAULT_FPS) -> List[ClipTask]:
    """The clips of the corpus CSV (validated, duplicates once; see ``read_avspeech_csv``)."""
    rows, _ = read_avspeech_csv(layout.csv_path(corpus), min_duration=0.0, max_duration=math.inf)
    return [
        ClipTask(r.clip_id, layout.clip_path(corpus, r.clip_id), (r.x, r.y), round(r.duration * fps))
        for r in rows
    ]


def clip_features(
    task: ClipTask, tracker: FaceTracker, config: VisualConfig, embedder: Optional[FaceEmbedder] = None
) -> Dict[str, np.ndarray]:
    """Visual features of one clip (arrays named as the files of its directory).

    Raises:
        ClipDropped: unreadable file, no face, or the hinted face missing on too many frames.
    """
    try:
        track = tracker.track_hinted(iter_frame_chunks(task.path, config.fps), task.hint)
        if track is None:
            raise ClipDropped(NO_FACE, "no face detected")
        missing = 1 - float(fit_length(track.mask, task.n_frames).mean())
        if missing > config.max_missing_ratio:
            raise ClipDropped(
                TOO_MANY_MISSING,
                f"face missing on {missing:.0%} of frames (max_missing_ratio={config.max_missing_ratio})",
            )
        with_faces = config.save_faces or embedder is not None
        [(lips, faces)] = crop_tracks(
            iter_frame_chunks(task.path, config.fps), [track], config.lip_size, config.lip_scale, with_faces
        )
    except VideoReadError as err:
        raise ClipDropped(UNREADABLE, str(err)) from err
    n = task.n_frames
    features = {
        "lips": fit_length(lips, n),
        "mask": fit_length(track.mask, n),
        "boxes": fit_length(track.boxes, n),
        "landmarks": fit_length(track.landmarks, n),
    }
    if with_faces:
        faces = fit_length(faces, n)
        if config.save_faces:
            features["faces"] = faces
        if embedder is not None:
            embeddings = np.zeros((n, EMBEDDING_DIM), np.float16)
            present = np.flatnonzero(features["mask"])
            embeddings[present] = embedder(faces[present]).astype(np.float16)
            features["embeddings"] = embeddings
    return features


def write_clip_dir(clip_dir: Path, features: Dict[str, np.ndarray]) -> None:
    """Write ``features`` as ``<name>.npy`` files into ``clip_dir``, atomically (temp dir + rename)."""
    with atomic_dir(clip_dir) as tmp:
        for name, array in features.items():
            np.save(tmp / f"{name}.npy", array)


def is_complete(clip_dir: Path, config: VisualConfig, with_embeddings: bool) -> bool:
    """True if ``clip_dir`` holds every file this ``config`` asks for, with lips of the right size."""
    names = ["lips", "mask", "boxes", "landmarks"]
    names += ["faces"] if config.save_faces else []
    names += ["embeddings"] if with_embeddings else []
    if not all((clip_dir / f"{n}.npy").is_file() for n in names):
        return False
    lips = np.load(clip_dir / "lips.npy", mmap_mode="r")
    return lips.shape[1:] == (config.lip_size, config.lip_size)


def _clip_row(clip_id: str, clip_dir: Path, out_dir: Path) -> Tuple:
    mask = np.load(clip_dir / "mask.npy")
    return (
        clip_id,
        layout.youtube_id_of(clip_id),
        len(mask),
        f"{mask.mean():.4f}",
        clip_dir.relative_to(out_dir.parent).as_posix(),
    )


def _read_dropped(path: Path) -> Dict[str, str]:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["clip_id"]: row["reason"] for row in csv.DictReader(f)}


def _write_csv(path: Path, header: Tuple[str, ...], rows: List[Tuple]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(sorted(rows))


class _Worker:
    """Everything one process needs to process clips: its tracker and (optional) embedder."""

    def __init__(self, config: VisualConfig, out_dir: Path):
        self.config = config
        self.out_dir = out_dir
        detector = FaceDetector(device=config.device)
        self.tracker = FaceTracker(detect_every=config.detect_every, detector=detector)
        self.embedder = load_face_embedder(config.facenet_weights, config.device)

    def __call__(self, task: ClipTask) -> Tuple[str, Optional[str]]:
        """Process one clip: ``(clip_id, None)`` if written, ``(clip_id, reason)`` if dropped."""
        try:
            features = clip_features(task, self.tracker, self.config, self.embedder)
        except ClipDropped as err:
            return task.clip_id, str(err)
        write_clip_dir(self.out_dir / task.clip_id, features)
        return task.clip_id, None


_worker: Optional[_Worker] = None  # one per pool process, built by _init_worker


def _init_worker(config: VisualConfig, out_dir: Path) -> None:
    global _worker
    one_thread()
    _worker = _Worker(config, out_dir)


def _run_in_worker(task: ClipTask) -> Tuple[str, Optional[str]]:
    return _worker(task)


def visual_dir(data: Path) -> Path:
    """Directory of the stage-2 outputs inside the data root."""
    return Path(data) / "visual"


def extract_visual(
    corpus: Path,
    data: Optional[Path] = None,
    config: Optional[VisualConfig] = None,
    workers: int = 1,
    retry_dropped: bool = False,
) -> Summary:
    """Run stage 2 over a corpus; write ``<data>/visual/``: clip directories, clips.csv, dropped.csv.

    Args:
        corpus: corpus directory (``avspeech.csv``, ``clips/``).
        data: data root of the outputs (default: ``corpus``).
        config: stage settings (defaults if None).
        workers: parallel processes (1 = in this process).
        retry_dropped: process again the clips a previous run dropped.

    Returns:
        Counts of kept and dropped clips.
    """
    corpus = Path(corpus)
    out_dir = visual_dir(data if data is not None else corpus)
    config = config or VisualConfig()
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(f"{TEMP_DIR_PREFIX}*"):  # from an interrupted run
        shutil.rmtree(leftover, ignore_errors=True)

    tasks = read_tasks(corpus, config.fps)
    with_embeddings = config.facenet_weights is not None and Path(config.facenet_weights).is_file()
    dropped = {} if retry_dropped else _read_dropped(out_dir / "dropped.csv")
    dropped = {k: v for k, v in dropped.items() if k in {t.clip_id for t in tasks}}
    summary = Summary()
    todo = []
    for task in tasks:
        if task.clip_id in dropped:
            summary.dropped[dropped[task.clip_id].split(":")[0]] += 1
        elif is_complete(out_dir / task.clip_id, config, with_embeddings):
            summary.already_done += 1
        else:
            todo.append(task)
    logger.info("Stage 2: %d clips to process, %d already done", len(todo), summary.already_done)

    if todo:
        bar = tqdm(total=len(todo), desc="visual features", unit="clip")
        if workers > 1:
            with worker_pool(workers, initializer=_init_worker, initargs=(config, out_dir)) as pool:
                for clip_id, reason in pool.map(_run_in_worker, todo):
                    _count(summary, dropped, clip_id, reason)
                    bar.update()
        else:
            worker = _Worker(config, out_dir)
            for task in todo:
                clip_id, reason = worker(task)
                _count(summary, dropped, clip_id, reason)
                bar.update()
        bar.close()

    rows = [
        _clip_row(t.clip_id, out_dir / t.clip_id, out_dir)
        for t in tasks
        if t.clip_id not in dropped and (out_dir / t.clip_id).is_dir()
    ]
    summary.kept = len(rows)
    _write_csv(out_dir / "clips.csv", CLIPS_HEADER, rows)
    _write_csv(out_dir / "dropped.csv", DROPPED_HEADER, list(dropped.items()))
    return summary


def _count(summary: Summary, dropped: Dict[str, str], clip_id: str, reason: Optional[str]) -> None:
    if reason is not None:
        logger.info("Dropped %s (%s)", clip_id, reason)
        dropped[clip_id] = reason
        summary.dropped[reason.split(":")[0]] += 1
