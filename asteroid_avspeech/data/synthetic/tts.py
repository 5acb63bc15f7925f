"""Speech synthesis with phoneme timings: libespeak-ng through ctypes.

espeak-ng is run synchronously with phoneme events switched on; its callback receives both the
int16 samples (22050 Hz) and events whose ``audio_position`` (ms) says when each phoneme and
word starts. The result is resampled to the corpus rate.
"""
import ctypes
import ctypes.util
import os
import pickle
from dataclasses import dataclass, field
from math import gcd
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.signal import resample_poly

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_WORD, _EVENT_END, _EVENT_PHONEME = 1, 5, 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_LIBC = ctypes.CDLL(None)  # the C library espeak-ng's rand() comes from
_INSTALL_HINT = (
    "install the Debian package espeak-ng (`apt-get install espeak-ng`) "
    "or the wheel espeakng-loader (`pip install espeakng-loader`)"
)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """One synthetic voice: an espeak-ng voice name (``accent+variant``), pitch 0-100, rate in wpm."""

    name: str
    espeak: str
    pitch: int
    rate: int
    pitch_range: int = 50


def _voice(accent: str, variant: str, pitch: int, rate: int, pitch_range: int = 50) -> Voice:
    return Voice(f"{accent}+{variant}", f"{accent}+{variant}", pitch, rate, pitch_range)


# Speaker voices (espeak-ng 1.51 names British English "en"): every entry differs in variant (timbre) and most in accent, pitch and rate.
VOICES: Tuple[Voice, ...] = (
    _voice("en-us", "m1", 40, 160),
    _voice("en-us", "f1", 62, 165),
    _voice("en", "m2", 35, 150),
    _voice("en", "f2", 70, 170),
    _voice("en-gb-scotland", "m3", 45, 155),
    _voice("en-gb-scotland", "f3", 58, 150),
    _voice("en-029", "m4", 30, 170),
    _voice("en-029", "f4", 66, 160),
    _voice("en-gb-x-rp", "m5", 50, 145),
    _voice("en-gb-x-rp", "f5", 74, 155),
    _voice("en-us-nyc", "m6", 38, 175),
    _voice("en-us-nyc", "f2", 55, 180, 70),
    _voice("en-us", "m7", 25, 150),
    _voice("en-gb-x-gbclan", "m8", 42, 165),
    _voice("en-us", "klatt", 48, 158),
    _voice("en-gb-x-gbcwmd", "klatt2", 52, 150),
    _voice("en-us", "klatt3", 60, 165),
    _voice("en-gb-scotland", "klatt4", 35, 160),
    _voice("en-029", "m2", 55, 150, 30),
    _voice("en-gb-x-rp", "m3", 32, 165, 70),
    _voice("en-us", "f3", 80, 150, 60),
    _voice("en-gb-x-gbclan", "f4", 50, 175),
    _voice("en-us-nyc", "m1", 46, 150, 20),
    _voice("en-gb-x-rp", "f1", 68, 180, 40),
)

# Other voices for babble noise only, so that babble never contains a corpus speaker's voice.
BABBLE_VOICES: Tuple[Voice, ...] = tuple(
    Voice(f"babble-{lang}+{var}", f"{lang}+{var}", pitch, rate)
    for lang, var, pitch, rate in (
        ("de", "m3", 40, 170), ("fr", "f2", 65, 175), ("es", "m1", 45, 180), ("it", "f4", 60, 170),
        ("nl", "m5", 35, 165), ("pt", "f1", 70, 175), ("sv", "m2", 50, 170), ("pl", "f3", 58, 165),
    )
)


def voices_by_name(names: Optional[List[str]] = None, pool: Tuple[Voice, ...] = VOICES) -> List[Voice]:
    """The voices called ``names`` (all of ``pool`` if None); unknown names raise ValueError."""
    table: Dict[str, Voice] = {v.name: v for v in pool}
    if names is None:
        return list(pool)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"Unknown voice(s) {unknown}; choose from {sorted(table)} (see --list)")
    return [table[n] for n in names]


@dataclass
class Speech:
    """Synthesised speech of one text.

    Attributes:
        samples: int16 array of shape ``(time,)`` at ``sample_rate``.
        phones: ``(start_s, end_s, phone)`` per espeak-ng phoneme mnemonic.
        words: ``(start_s, char_start, char_end)`` per word, character offsets into ``text``.
    """

    text: str
    sample_rate: int
    samples: np.ndarray
    phones: List[Tuple[float, float, str]] = field(default_factory=list)
    words: List[Tuple[float, int, int]] = field(default_factory=list)


def _load_library() -> Tuple[ctypes.CDLL, Optional[bytes]]:
    """libespeak-ng and its data path (None: the library's built-in default)."""
    try:
        import espeakng_loader  # optional wheel shipping the library and its data

        return ctypes.CDLL(espeakng_loader.get_library_path()), espeakng_loader.get_data_path().encode()
    except ImportError:
        pass
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name), None
    except OSError as err:
        raise RuntimeError(f"libespeak-ng not found ({err}): {_INSTALL_HINT}") from err


class Espeak:
    """A libespeak-ng instance in synchronous mode with phoneme events (one per process).

    Args:
        sample_rate: rate of the returned samples (espeak-ng itself runs at 22050 Hz).
    """

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = sample_rate
        self._lib, data_path = _load_library()
        self._native_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_PHONEME_EVENTS
        )
        if self._native_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self._native_rate}): {_INSTALL_HINT}")
        self._chunks: List[np.ndarray] = []
        self._events: List[Tuple[int, int, int, int, bytes]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: the library holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    def _on_synth(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != 0:  # espeakEVENT_LIST_TERMINATED
            ev = events[i]
            self._events.append((ev.type, ev.audio_position, ev.text_position, ev.length, bytes(ev.id.string)))
            i += 1
        return 0

    def set_voice(self, voice: Voice) -> None:
        """Select ``voice`` (in the synthesising child); an unknown espeak-ng name raises ValueError."""
        if self._lib.espeak_SetVoiceByName(voice.espeak.encode()) != 0:
            raise ValueError(f"espeak-ng does not know voice {voice.espeak!r} (list them: espeak-ng --voices)")
        for param, value in ((_PARAM_RATE, voice.rate), (_PARAM_PITCH, voice.pitch), (_PARAM_RANGE, voice.pitch_range)):
            self._lib.espeak_SetParameter(param, value, 0)

    def _synthesize_native(self, text: str, voice: Voice) -> Tuple[np.ndarray, list]:
        """Samples at the native rate and raw events, computed in a forked child.

        libespeak-ng carries state from one utterance to the next (timings and waveform of the
        same text drift by milliseconds) and cannot be re-initialised in a process. A child
        forked from this never-used instance always starts from the same state, and its C
        ``rand()`` is seeded, so the output is a pure function of ``(text, voice)``.
        """
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise, send, exit without running any Python cleanup
            code = 0
            try:
                os.close(read_fd)
                _LIBC.srand(0)
                self.set_voice(voice)
                self._chunks, self._events = [], []
                data = text.encode("utf-8") + b"\0"
                err = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                native = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
                payload = pickle.dumps((err, native, self._events))
            except BaseException as exc:  # report to the parent, which raises
                payload, code = pickle.dumps((repr(exc), None, None)), 1
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        err, native, events = pickle.loads(payload)
        if native is None or err != 0:
            raise RuntimeError(f"espeak-ng failed on {text!r} with voice {voice.name!r}: {err}")
        return native, events

    def synthesize(self, text: str, voice: Voice) -> Speech:
        """Speak ``text`` with ``voice``: samples at ``sample_rate`` plus phone and word timings."""
        native, events = self._synthesize_native(text, voice)
        end_s = len(native) / self._native_rate
        phones, words = [], []
        for kind, pos_ms, text_pos, length, name in events:
            if kind == _EVENT_PHONEME:
                phones.append([pos_ms / 1000.0, end_s, name.split(b"\0")[0].decode("ascii", "replace")])
            elif kind == _EVENT_WORD:  # text_position is 1-based
                words.append((pos_ms / 1000.0, text_pos - 1, text_pos - 1 + length))
        for cur, nxt in zip(phones, phones[1:]):
            cur[1] = nxt[0]
        g = gcd(self.sample_rate, self._native_rate)
        resampled = resample_poly(native.astype(np.float64), self.sample_rate // g, self._native_rate // g)
        samples = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
        return Speech(text, self.sample_rate, samples, [tuple(p) for p in phones], words)
