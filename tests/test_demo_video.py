"""Speaker choice of the demo clip maker (``local/make_demo_video.py``)."""
import importlib.util
import json
from pathlib import Path

import pytest

from asteroid_avspeech.data import layout

SCRIPT = Path(__file__).resolve().parents[1] / "local" / "make_demo_video.py"
SPEAKERS = ("AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC")


@pytest.fixture(scope="module")
def demo_script():
    spec = importlib.util.spec_from_file_location("make_demo_video", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def corpus(tmp_path):
    """A corpus CSV with four 3 s clips per speaker and a test split of the last two speakers."""
    rows = [f"{s},{3.0 * k:.6f},{3.0 * (k + 1):.6f},0.5,0.5" for s in SPEAKERS for k in range(4)]
    layout.csv_path(tmp_path).write_text("\n".join(rows) + "\n")
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": [SPEAKERS[0]], "val": [], "test": list(SPEAKERS[1:])}))
    return tmp_path, splits


def test_default_is_the_first_two_test_speakers(demo_script, corpus):
    left, right = demo_script.pick_sides(*corpus, seconds=7.0)
    assert left == [layout.make_clip_id(SPEAKERS[1], 3.0 * k, 3.0 * (k + 1)) for k in range(3)]
    assert right == [layout.make_clip_id(SPEAKERS[2], 3.0 * k, 3.0 * (k + 1)) for k in range(3)]


def test_named_speakers_in_the_given_order(demo_script, corpus):
    left, right = demo_script.pick_sides(*corpus, seconds=3.0, speakers=[SPEAKERS[2], SPEAKERS[0]])
    assert left == [layout.make_clip_id(SPEAKERS[2], 0.0, 3.0)]
    assert right == [layout.make_clip_id(SPEAKERS[0], 0.0, 3.0)]


@pytest.mark.parametrize("speakers, unknown", [([SPEAKERS[0], "XXXXXXXXXXX"], "XXXXXXXXXXX"), ([SPEAKERS[0]], "none")])
def test_unknown_or_missing_speaker_names_the_csv(demo_script, corpus, speakers, unknown):
    with pytest.raises(SystemExit, match=f"avspeech.csv.*unknown: {unknown}"):
        demo_script.pick_sides(*corpus, seconds=3.0, speakers=speakers)
