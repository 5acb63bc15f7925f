"""run.sh argument parsing (utils/parse_options.sh), without running any stage."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args):
    # --stage 9 --stop-stage 0 selects no stage; --python_path skips the setup step
    cmd = ["bash", str(REPO / "run.sh"), "--python_path", "python3", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_unknown_option_fails_with_usage():
    res = _run("--bogus", "1")
    assert res.returncode == 1
    assert "unknown option --bogus" in res.stderr and "Usage:" in res.stderr


def test_help_prints_usage():
    res = _run("--help")
    assert res.returncode == 0 and "--stop-stage" in res.stdout


def test_stage_range_and_conf_keys_are_accepted():
    res = _run("--stage", "9", "--stop-stage", "0", "--tag", "t", "--lr", "1e-4", "--n_src=3")
    assert res.returncode == 0, res.stderr
    assert re.search(r"Done \(stages 9 to 0, \d+m\d\ds\)\.", res.stdout), res.stdout


def test_option_without_value_fails():
    res = _run("--stage")
    assert res.returncode == 1 and "needs a value" in res.stderr


def test_stray_positional_argument_fails():
    res = _run("stage0")
    assert res.returncode == 1 and "unexpected argument" in res.stderr


def test_other_conf_file(tmp_path):
    conf = tmp_path / "my conf.yml"
    conf.write_text("training:\n  my_key: 1\n")
    ok = _run("--conf", str(conf), "--stage", "9", "--stop-stage", "0", "--my_key", "2")
    assert ok.returncode == 0, ok.stderr
    bad = _run("--conf", str(conf), "--stage", "9", "--stop-stage", "0", "--lr", "2")
    assert bad.returncode == 1 and "unknown option --lr" in bad.stderr
