"""Our models are registered with asteroid: idempotently, and in a fresh process via the .pth hook."""
import importlib
import subprocess
import sys

import asteroid.models
import pytest
from asteroid.models import BaseModel

import asteroid_avspeech
from asteroid_avspeech.registry import register_models


def test_models_are_found_by_name():
    assert asteroid.models.get("LookingToListen") is asteroid_avspeech.LookingToListen
    assert asteroid.models.get("VisualEncoder") is asteroid_avspeech.VisualEncoder


def test_second_registration_and_reload_do_not_raise():
    register_models([asteroid_avspeech.LookingToListen])
    importlib.reload(asteroid_avspeech)
    assert asteroid.models.get("LookingToListen") is asteroid_avspeech.LookingToListen


def test_a_foreign_class_under_a_taken_name_is_refused():
    class ConvTasNet(BaseModel):  # same name as asteroid's own model
        pass

    with pytest.raises(ValueError, match="rename one of the two"):
        register_models([ConvTasNet])


def test_fresh_process_finds_models_without_importing_us():
    code = ("import sys, asteroid.models as m; "
            "assert 'asteroid_avspeech' in sys.modules; print(m.get('LookingToListen').__module__)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("asteroid_avspeech.models")


def test_interpreter_start_does_not_import_torch():
    code = "import sys; print('torch' in sys.modules, 'asteroid_avspeech_autoload' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["False", "True"], res.stdout + res.stderr
