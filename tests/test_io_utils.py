"""Atomic writers: all or nothing, usual permissions."""
import os

import pytest

from asteroid_avspeech.io_utils import atomic_dir, atomic_path


def test_atomic_path_all_or_nothing_with_the_usual_mode(tmp_path):
    target = tmp_path / "out" / "a.wav"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list((tmp_path / "out").iterdir()) == []
    old = os.umask(0o022)
    try:
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".wav" and tmp.parent == target.parent
            tmp.write_text("done")
    finally:
        os.umask(old)
    assert target.read_text() == "done"
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "clip"
    with atomic_dir(target) as tmp:
        (tmp / "a.npy").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.npy").write_text("2")
            raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]
    assert [p.name for p in target.iterdir()] == ["a.npy"]
    with atomic_dir(target) as tmp:
        (tmp / "c.npy").write_text("3")
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]
    assert [p.name for p in target.iterdir()] == ["c.npy"]
