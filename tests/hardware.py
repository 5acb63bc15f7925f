"""Markers for tests that need something of the machine they run on."""
import pytest

from asteroid_avspeech.models.fast_inference import cpu_runs_bf16

#: bf16 on CPU: oneDNN has no bf16 LSTM without AVX-512 (resolve_precision refuses it there).
requires_bf16 = pytest.mark.skipif(not cpu_runs_bf16(), reason="this CPU cannot run the model in bf16 (no AVX-512)")
