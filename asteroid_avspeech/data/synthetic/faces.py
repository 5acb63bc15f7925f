"""Face identities: real photos that ship in packages, aligned once, plus blends of them.

A base face is one person in one photo. Its five MTCNN landmarks (eyes, nose, mouth corners)
are measured once (:func:`align_photos`, needs torch + facenet-pytorch) and stored in the small
committed file ``face_landmarks.json``; generation only warps the photo onto a canonical template
(eyes level, fixed size), so it needs neither torch nor a detector. A blend ``a+b`` averages two
aligned faces: a new, non-real identity. The photos themselves are never committed: they are read
from installed wheels (scikit-image, matplotlib) or extracted from the Debian ``kphotoalbum``
package into a cache folder (:func:`fetch_photos`).
"""
import hashlib
import importlib.util
import itertools
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

log = logging.getLogger(__name__)

LANDMARKS_JSON = Path(__file__).with_name("face_landmarks.json")
KPHOTOALBUM_DEMO = "usr/share/kphotoalbum/demo"
# Five-point template (eyes, nose tip, mouth corners) of a 112 px face crop (ArcFace convention).
_TEMPLATE_112 = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float64
)


@dataclass(frozen=True)
class FacePhoto:
    """One person in one photo. ``hint`` is a rough face centre (px) that picks the face in group photos."""

    name: str
    source: str  # "skimage" | "matplotlib" | "kphotoalbum"
    relpath: str
    hint: Tuple[int, int]


PHOTOS: Tuple[FacePhoto, ...] = (
    FacePhoto("astronaut", "skimage", "data/astronaut.png", (250, 120)),
    FacePhoto("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", (260, 250)),
    FacePhoto("kpa_anne_helene", "kphotoalbum", "anne_helene.jpg", (181, 184)),
    FacePhoto("kpa_bar55_woman", "kphotoalbum", "bar55.jpg", (316, 286)),
    FacePhoto("kpa_bar55_man", "kphotoalbum", "bar55.jpg", (407, 218)),
    FacePhoto("kpa_jesper", "kphotoalbum", "jesper_2.jpg", (398, 252)),
    FacePhoto("kpa_new_wave", "kphotoalbum", "new_wave_2.jpg", (395, 285)),
    FacePhoto("kpa_grand_canyon", "kphotoalbum", "grand_canyon_2.jpg", (381, 284)),
    FacePhoto("kpa_jim", "kphotoalbum", "qt-logo.jpg", (633, 107)),
    FacePhoto("kpa_wayne", "kphotoalbum", "qt-logo.jpg", (209, 145)),
)
BLEND_SEP = "+"


def default_cache_dir() -> Path:
    """``$ASTEROID_AVSPEECH_CACHE`` or ``$XDG_CACHE_HOME/asteroid_avspeech`` (``~/.cache/...``)."""
    env = os.environ.get("ASTEROID_AVSPEECH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asteroid_avspeech"


def face_names(include_blends: bool = True) -> List[str]:
    """All face identities: base photos first, then every pairwise blend ``a+b``."""
    bases = [p.name for p in PHOTOS]
    blends = [f"{a}{BLEND_SEP}{b}" for a, b in itertools.combinations(bases, 2)] if include_blends else []
    return bases + blends


def parents(face: str) -> List[str]:
    """The base photos a face identity is made of (one, or two for a blend)."""
    return face.split(BLEND_SEP)


def check_face_names(names: List[str]) -> None:
    """Raise ValueError naming the valid choices if any of ``names`` is not a known face."""
    bases = {p.name for p in PHOTOS}
    bad = [n for n in names if not all(p in bases for p in parents(n)) or len(parents(n)) > 2]
    if bad:
        raise ValueError(
            f"Unknown face(s) {bad}; use base faces {sorted(bases)} or blends 'a{BLEND_SEP}b' (see --list)"
        )


def photo_path(photo: FacePhoto, cache_dir: Path) -> Path:
    """Where the photo of ``photo`` is on this machine (a wheel's data, or the cache)."""
    if photo.source == "kphotoalbum":
        return Path(cache_dir) / "faces" / "kphotoalbum" / photo.relpath
    spec = importlib.util.find_spec(photo.source)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"Face {photo.name!r} needs the Python package {photo.source!r}: pip install {photo.source}")
    return Path(list(spec.submodule_search_locations)[0]) / photo.relpath


def fetch_photos(cache_dir: Optional[Path] = None) -> Path:
    """Extract the kphotoalbum demo photos into ``cache_dir/faces/kphotoalbum`` if missing.

    Uses ``apt-get download kphotoalbum`` + ``dpkg-deb -x`` (the package is not installed).

    Returns:
        The folder holding the photos.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    dest = cache_dir / "faces" / "kphotoalbum"
    needed = sorted({p.relpath for p in PHOTOS if p.source == "kphotoalbum"})
    if all((dest / f).exists() for f in needed):
        return dest
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} not found: the kphotoalbum faces come from the Debian package kphotoalbum; "
                "use --faces with the skimage/matplotlib faces (astronaut, grace_hopper) instead"
            )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        log.info("Downloading Debian package kphotoalbum into %s", tmp)
        run = subprocess.run(["apt-get", "download", "kphotoalbum"], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("kphotoalbum_*.deb"))
        if run.returncode != 0 or not debs:
            raise RuntimeError(
                f"`apt-get download kphotoalbum` failed ({run.stderr.strip()[-300:]}); "
                "run `apt-get update` first, or use --faces astronaut,grace_hopper"
            )
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(Path(tmp) / "x")], check=True)
        for name in needed:
            shutil.copyfile(Path(tmp) / "x" / KPHOTOALBUM_DEMO / name, dest / name)
    return dest


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"Cannot read face photo {path}: run local/fetch_faces.py to (re)extract it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def align_photos(cache_dir: Optional[Path] = None, out_json: Path = LANDMARKS_JSON) -> Dict[str, dict]:
    """Detect every base face once with MTCNN and write its landmarks to ``out_json``.

    Needs torch and facenet-pytorch (imported here only). In a group photo the detected face
    nearest to ``FacePhoto.hint`` is taken.
    """
    from facenet_pytorch import MTCNN  # heavy, and only needed to (re)build the JSON

    cache_dir = Path(cache_dir or default_cache_dir())
    fetch_photos(cache_dir)
    detector = MTCNN(keep_all=True, device="cpu")
    faces = {}
    for photo in PHOTOS:
        path = photo_path(photo, cache_dir)
        image = _read_rgb(path)
        boxes, probs, points = detector.detect(image, landmarks=True)
        if boxes is None:
            raise RuntimeError(f"MTCNN found no face in {path}")
        boxes, points = np.asarray(boxes, float), np.asarray(points, float)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        best = int(np.argmin(np.linalg.norm(centres - np.asarray(photo.hint), axis=1)))
        faces[photo.name] = {
            "source": photo.source,
            "path": photo.relpath,
            "sha256": _sha256(path),
            "size": [int(image.shape[1]), int(image.shape[0])],
            "box": np.round(boxes[best], 2).tolist(),
            "prob": round(float(probs[best]), 5),
            "landmarks": np.round(points[best], 2).tolist(),
        }
        log.info("%s: face %d of %d, p=%.4f", photo.name, best, len(boxes), probs[best])
    lines = [f"  {json.dumps(name)}: {json.dumps(record)}" for name, record in faces.items()]
    Path(out_json).write_text('{"detector": "facenet_pytorch.MTCNN", "faces": {\n' + ",\n".join(lines) + "\n}}\n")
    return faces


@lru_cache(maxsize=1)
def load_landmarks(path: Path = LANDMARKS_JSON) -> Dict[str, dict]:
    """Base-face records of ``face_landmarks.json`` keyed by face name."""
    with open(path) as f:
        return json.load(f)["faces"]


def canonical_landmarks(size: int = 256) -> np.ndarray:
    """Template landmarks of shape ``(5, 2)`` for a ``size`` px frame: the face fills about 2/3 of it."""
    scale = 1.4 * size / 256
    pts = _TEMPLATE_112 * scale
    centre = np.array([pts[:, 0].mean(), (pts[:2, 1].mean() + pts[3:, 1].mean()) / 2])
    return pts - centre + np.array([size / 2, size * 0.47])


@dataclass
class AlignedFace:
    """A face warped onto the canonical template.

    Attributes:
        image: uint8 RGB canvas of shape ``(size + 2 * margin, size + 2 * margin, 3)``.
        landmarks: ``(5, 2)`` landmark positions in canvas pixels.
        margin: canvas border (px) around the output frame, room for head motion.
    """

    name: str
    image: np.ndarray
    landmarks: np.ndarray
    margin: int


def _align_base(name: str, cache_dir: Path, size: int, margin: int) -> AlignedFace:
    record = load_landmarks()[name]
    photo = next(p for p in PHOTOS if p.name == name)
    path = photo_path(photo, cache_dir)
    if photo.source == "kphotoalbum" and not path.exists():
        fetch_photos(cache_dir)
    if _sha256(path) != record["sha256"]:
        raise RuntimeError(
            f"{path} is not the photo whose landmarks are in {LANDMARKS_JSON.name}; "
            "re-align with `python local/fetch_faces.py --align`"
        )
    image = _read_rgb(path)
    src = np.asarray(record["landmarks"], np.float64)
    dst = canonical_landmarks(size) + margin
    matrix, _ = cv2.estimateAffinePartial2D(src, dst)
    scale = float(np.hypot(*matrix[:, 0]))
    if scale < 0.7:  # shrink first with area averaging: warpAffine alone would alias
        image = cv2.resize(image, None, fx=scale * 1.2, fy=scale * 1.2, interpolation=cv2.INTER_AREA)
        src = src * scale * 1.2
        matrix, _ = cv2.estimateAffinePartial2D(src, dst)
    canvas = size + 2 * margin
    aligned = cv2.warpAffine(image, matrix, (canvas, canvas), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    points = src @ matrix[:, :2].T + matrix[:, 2]
    return AlignedFace(name, aligned, points, margin)


def _portrait(image: np.ndarray, landmarks: np.ndarray, background_gain: float = 0.85) -> np.ndarray:
    """Keep an elliptical head region sharp and blur the rest (removes other people of group photos).

    Args:
        image: uint8 RGB canvas ``(height, width, 3)``.
        landmarks: ``(5, 2)`` landmarks of the kept face, in canvas pixels.
    """
    eyes, mouth = landmarks[:2].mean(axis=0), landmarks[3:].mean(axis=0)
    d = float(np.linalg.norm(mouth - eyes))
    centre = (eyes + mouth) / 2 - np.array([0.0, 0.2 * d])
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(1.4 * d), int(1.9 * d)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.2 * d)[..., None]
    background = cv2.GaussianBlur(image, (0, 0), 0.4 * d).astype(np.float32) * background_gain
    return np.round(mask * image + (1 - mask) * background).astype(np.uint8)


@lru_cache(maxsize=8)
def aligned_face(name: str, cache_dir: Path, size: int = 256, margin: int = 24) -> AlignedFace:
    """The aligned canvas of a base face or of a blend ``a+b`` (the average of both aligned faces).

    Everything outside the head is blurred (:func:`_portrait`) so that exactly one face is visible.
    """
    check_face_names([name])
    faces = [_align_base(p, Path(cache_dir), size, margin) for p in parents(name)]
    image = np.mean([f.image.astype(np.float32) for f in faces], axis=0)
    landmarks = np.mean([f.landmarks for f in faces], axis=0)
    return AlignedFace(name, _portrait(np.round(image).astype(np.uint8), landmarks), landmarks, margin)
