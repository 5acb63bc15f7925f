"""Our models are registered with asteroid: idempotently, and in a fresh process via the .pth hook."""
import importlib
import subprocess
import sys

import asteroid.models
import pytest
from asteroid.models import BaseModel

import asteroid_avspeech
from asteroid_avspeech.models.serialization import names_missing_file
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


def test_a_missing_model_file_is_reported_as_such(tmp_path):
    """asteroid's loader took a mistyped path for a hub model id (huggingface_hub's HFValidationError)."""
    missing = tmp_path / "exp" / "l2l" / "best_modle.pth"
    with pytest.raises(FileNotFoundError, match=f"Model package {missing} does not exist"):
        BaseModel.from_pretrained(str(missing))


@pytest.mark.parametrize("name, missing_file", [
    ("exp/l2l/best_modle.pth", True), ("best_model.pt", True), ("/abs/models/l2l", True),
    ("mpariente/ConvTasNet_WHAM!_sepclean", False),  # asteroid's Zenodo names
    ("JorisCos/ConvTasNet_Libri2Mix_sepclean_16k", False), ("user/model@main", False),  # hub model ids
    ("https://zenodo.org/record/1/files/model.pth", False),
])
def test_only_names_that_must_be_files_are_checked(name, missing_file):
    assert names_missing_file(name) is missing_file
