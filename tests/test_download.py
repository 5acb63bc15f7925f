"""AVSpeech downloader with a stand-in yt-dlp: validation, safety, success, failure, resume, shards."""
import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from asteroid_avspeech.data import layout
from asteroid_avspeech.data.download import (
    default_ffmpeg,
    download_corpus,
    failures_path,
    read_avspeech_csv,
    shard_of,
)
from video_fixtures import write_mp4

REPO = Path(__file__).resolve().parents[1]

STAND_IN = """#!{python}
# Stand-in for yt-dlp: logs its argv, fails for some ids, else copies a local mp4 to the -o path.
import json, shutil, sys
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
url = args[args.index("--") + 1]
video = url.split("v=", 1)[1]
if video in {fail!r}:
    sys.stderr.write("ERROR: [youtube] " + video + ": Private video. Sign in if you've been granted access\\n")
    sys.exit(1)
shutil.copy({source!r}, args[args.index("-o") + 1].replace("%(ext)s", "mp4"))
"""

GOOD = ["-dashFirst0", "good_video1"]
PRIVATE = "privateVid1"
ROWS = [
    "-dashFirst0,1.5,4.25,0.5,0.5",  # valid id starting with '-': must follow '--'
    "good_video1,0.000000,3.000000,0.25,0.75",
    "good_video1,0.000000,3.000000,0.25,0.75",  # duplicate
    f"{PRIVATE},2.0,5.0,0.5,0.5",
    "-x,1.0,4.0,0.5,0.5",  # option-like id
    "; rm -rf /,1.0,4.0,0.5,0.5",  # shell command
    "$(touch pwned),1.0,4.0,0.5,0.5",
    "shortVideo1,1.0,1.5,0.5,0.5",  # 0.5 s
    "longVideo01,0.0,30.0,0.5,0.5",  # 30 s
    "backwards01,5.0,4.0,0.5,0.5",
    "outsideBox1,1.0,4.0,1.5,0.5",
    "notANumber1,one,4.0,0.5,0.5",
    "tooFewCols1,1.0,4.0",
]


@pytest.fixture(scope="module")
def source_mp4(tmp_path_factory) -> Path:
    """A 3 s 30 fps clip with 44.1 kHz stereo audio: the re-encode must normalise all of it."""
    t = np.arange(3 * 44100) / 44100
    audio = np.tile(0.3 * np.sin(2 * np.pi * 330 * t), (2, 1)).astype(np.float32)
    frames = np.full((90, 48, 64, 3), 100, np.uint8)
    return write_mp4(tmp_path_factory.mktemp("src") / "source.mp4", frames, fps=30, audio=audio, sample_rate=44100)


def stand_in(tmp_path: Path, source: Path, fail=(PRIVATE,)) -> Path:
    script = tmp_path / "fake yt-dlp"
    script.write_text(STAND_IN.format(python=sys.executable, log=str(tmp_path / "calls.jsonl"), fail=list(fail),
                                      source=str(source)))  # fmt: skip
    script.chmod(0o755)
    return script


def calls(tmp_path: Path):
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def csv_in(tmp_path) -> Path:
    path = tmp_path / "avspeech_train.csv"
    path.write_text("\n".join(ROWS) + "\n")
    return path


def test_validation_skips_malformed_rows_with_line_numbers(csv_in, caplog):
    with caplog.at_level(logging.WARNING):
        rows, n_skipped = read_avspeech_csv(csv_in)
    assert [r.youtube_id for r in rows] == ["-dashFirst0", "good_video1", PRIVATE]
    assert n_skipped == 9
    for line_no in range(5, 14):
        assert f"line {line_no} skipped" in caplog.text
    assert rows[0].start == 1.5 and rows[0].end == 4.25  # fractions kept


def test_download_success_failure_and_resume(tmp_path, csv_in, source_mp4):
    corpus = tmp_path / "corpus with spaces"
    yt_dlp = stand_in(tmp_path, source_mp4)
    counts = download_corpus(csv_in, corpus, yt_dlp=str(yt_dlp), workers=2)
    assert counts == dict(valid=3, malformed=9, in_shard=3, existing=0, skipped_failed=0, downloaded=2, failed=1)

    argvs = calls(tmp_path)
    assert len(argvs) == 3
    for argv in argvs:  # the URL is the last argument, right after '--'; only validated ids appear
        assert argv[-2] == "--" and argv[-1].startswith("https://www.youtube.com/watch?v=")
        assert "--force-keyframes-at-cuts" in argv
    sections = {a[-1][-11:]: a[a.index("--download-sections") + 1] for a in argvs}
    assert sections == {"-dashFirst0": "*1.5-4.25", "good_video1": "*0.0-3.0", PRIVATE: "*2.0-5.0"}
    assert not any("rm -rf" in " ".join(a) or "-x," in " ".join(a) for a in argvs)
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()

    for clip_id, seconds in (("-dashFirst0_00001500_00004250", 2.75), ("good_video1_00000000_00003000", 3.0)):
        path = layout.clip_path(corpus, clip_id)
        with av.open(str(path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.average_rate == 25 and video.codec_context.name == "h264"
            assert (audio.rate, audio.codec_context.channels, audio.codec_context.name) == (16000, 1, "aac")
            n_frames = sum(1 for _ in container.decode(video=0))
        assert abs(n_frames - seconds * 25) <= 1
    assert not (corpus / "raw").exists() or not any((corpus / "raw").iterdir())

    with open(failures_path(corpus), newline="") as f:
        failures = list(csv.DictReader(f))
    assert [(r["youtube_id"], r["start"], r["end"]) for r in failures] == [(PRIVATE, "2.0", "5.0")]
    assert "Private video" in failures[0]["reason"]
    assert layout.csv_path(corpus).read_text().splitlines() == [
        "-dashFirst0,1.5,4.25,0.5,0.5", "good_video1,0.0,3.0,0.25,0.75", f"{PRIVATE},2.0,5.0,0.5,0.5"
    ]  # fmt: skip

    again = download_corpus(csv_in, corpus, yt_dlp=str(yt_dlp), workers=2)
    assert (again["existing"], again["skipped_failed"], again["downloaded"]) == (2, 1, 0)
    assert len(calls(tmp_path)) == 3  # nothing fetched again
    retry = download_corpus(csv_in, corpus, yt_dlp=str(yt_dlp), retry_failed=True)
    assert (retry["existing"], retry["failed"]) == (2, 1) and len(calls(tmp_path)) == 4


def test_failed_reencode_keeps_raw_then_resumes(tmp_path, csv_in, source_mp4):
    corpus = tmp_path / "corpus"
    broken = tmp_path / "broken-ffmpeg"
    broken.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('Conversion failed!\\n')\nsys.exit(1)\n")
    broken.chmod(0o755)
    yt_dlp = stand_in(tmp_path, source_mp4)
    counts = download_corpus(csv_in, corpus, yt_dlp=str(yt_dlp), ffmpeg=str(broken), workers=1)
    assert counts["failed"] == 3 and counts["downloaded"] == 0
    raw = corpus / "raw" / "good_video1_00000000_00003000" / "raw.mp4"
    assert raw.exists()  # kept: the re-encode failed
    assert not any(corpus.glob("clips/*/*.mp4"))
    n_calls = len(calls(tmp_path))
    fixed = download_corpus(csv_in, corpus, yt_dlp=str(yt_dlp), ffmpeg=default_ffmpeg(), retry_failed=True)
    assert fixed["downloaded"] == 2 and not raw.exists()
    assert len(calls(tmp_path)) == n_calls + 1  # only the private video was asked again


def test_shards_partition_rows(tmp_path, csv_in, source_mp4):
    yt_dlp = stand_in(tmp_path, source_mp4, fail=["-dashFirst0", "good_video1", PRIVATE])
    seen = []
    for shard in range(2):
        counts = download_corpus(csv_in, tmp_path / "c", yt_dlp=str(yt_dlp), shard=shard, n_shards=2)
        assert counts["in_shard"] == sum(shard_of(v, 2) == shard for v in ["-dashFirst0", "good_video1", PRIVATE])
        with open(failures_path(tmp_path / "c", shard, 2), newline="") as f:
            seen += [r["youtube_id"] for r in csv.DictReader(f)]
    assert sorted(seen) == sorted(["-dashFirst0", "good_video1", PRIVATE])
    assert shard_of("good_video1", 7) == shard_of("good_video1", 7)


def test_command_line(tmp_path, csv_in, source_mp4):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, str(REPO / "local" / "download_avspeech.py"), "--csv", str(csv_in), "--corpus",
         str(tmp_path / "cli corpus"), "--yt-dlp", str(stand_in(tmp_path, source_mp4)), "--limit", "2"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(proc.stdout.splitlines()[-1])["downloaded"] == 2
