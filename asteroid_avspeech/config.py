"""The recipe configuration: one YAML file of sections, every key overridable from the command line.

``conf.yml`` holds sections (``data``, ``visual``, ``model``, ``training``, ``optim``, ``eval``...)
of scalar or list values. As in asteroid's recipes, each key is also a command-line option
``--key value`` (key names are unique across sections, which :func:`load_conf` checks), so
``./run.sh --lr 1e-4`` and ``python local/train.py --conf conf.yml --lr 1e-4`` both work.
Values given on the command line are parsed as YAML (``--snr_range "[-5, 5]"``, ``--x null``).
"""
import argparse
import difflib
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

Conf = Dict[str, Dict[str, Any]]

#: ``model.stft`` of a conf without the key (written before it existed): the paper's STFT at 16 kHz,
#: FFT size, window and hop in samples (512 / 25 ms / 10 ms).
PAPER_STFT = (512, 400, 160)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)$|^[-+]?\d*\.\d+$|^[-+]?\d+\.$"),
    list("-+0123456789."),
)


def _parse_value(text: str) -> Any:
    return yaml.load(text, Loader=_Loader) if text != "" else ""


class ConfigError(ValueError):
    """A configuration file or an override that cannot be used (the message says why and how to fix)."""


def check_positive_int_or_null(key: str, value: Any, null_means: str) -> None:
    """Raise ``ConfigError`` unless ``value`` is None or a positive integer (``null_means``: what None does)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{key} must be a positive integer or null ({null_means}), got {value!r}.")


def stft_sizes(conf: Conf) -> Tuple[int, int, int]:
    """``model.stft`` as ``(n_filters, kernel_size, stride)`` in samples; the paper's 512/400/160 if absent.

    Raises:
        ConfigError: not three positive integers, a window longer than the FFT, or a hop longer than the window.
    """
    value = conf["model"].get("stft", PAPER_STFT)
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ConfigError(f"stft must be [n_filters, window, hop], three positive integers (samples), got {value!r}.")
    n_filters, kernel_size, stride = value
    if not stride <= kernel_size <= n_filters:
        raise ConfigError(f"stft {list(value)}: need hop <= window <= n_filters (FFT size).")
    return n_filters, kernel_size, stride


def load_conf(path: Path) -> Conf:
    """Read a sectioned YAML configuration.

    Raises:
        ConfigError: missing file, not a mapping of sections, or a key in two sections.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Configuration file {path} not found (pass --conf PATH to an existing conf.yml).")
    with open(path) as f:
        conf = yaml.load(f, Loader=_Loader) or {}
    if not isinstance(conf, dict) or not all(isinstance(v, dict) for v in conf.values()):
        raise ConfigError(f"{path}: expected a mapping of sections, each a mapping of keys to values.")
    owner: Dict[str, str] = {}
    for section, values in conf.items():
        for key in values:
            if key in owner:
                raise ConfigError(f"{path}: key {key!r} is in sections {owner[key]!r} and {section!r}; keys must be unique.")
            owner[key] = section
    return conf


def apply_overrides(conf: Conf, overrides: Sequence[str]) -> Conf:
    """Return a copy of ``conf`` with ``--key value`` (or ``--key=value``) overrides applied.

    Raises:
        ConfigError: an unknown key (with the closest valid ones), a missing value, or a stray argument.
    """
    owner = {key: section for section, values in conf.items() for key in values}
    new = {section: dict(values) for section, values in conf.items()}
    for key, value in _pairs(overrides):
        if key not in owner:
            close = difflib.get_close_matches(key, owner, n=3)
            hint = f" Did you mean {', '.join('--' + c for c in close)}?" if close else ""
            raise ConfigError(f"Unknown option --{key}.{hint} Valid options are the keys of the conf file: "
                              + " ".join(f"--{k}" for k in sorted(owner)))
        new[owner[key]][key] = _parse_value(value)
    return new


def _pairs(args: Sequence[str]) -> List[Tuple[str, str]]:
    pairs, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"Unexpected argument {arg!r}: options are --key value.")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ConfigError(f"Option --{key} needs a value.")
            value = args[i + 1]
            i += 1
        pairs.append((key.replace("-", "_"), value))
        i += 1
    return pairs


def parse_conf(argv: Optional[Sequence[str]] = None, description: str = "",
               extra: Optional[argparse.ArgumentParser] = None) -> Tuple[Conf, argparse.Namespace]:
    """Entry-point helper: ``--conf PATH`` plus overrides -> (conf, namespace of ``extra`` options).

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).
        description: shown by ``--help``.
        extra: a parser (``add_help=False``) for the script's own options that are not conf keys
            (``--exp_dir``...); its parsed values come back as the namespace.
    """
    parents = [extra] if extra is not None else []
    parser = argparse.ArgumentParser(description=description, parents=parents, allow_abbrev=False,
                                     epilog="Any key of the conf file can be overridden: --key value.")
    parser.add_argument("--conf", type=Path, default=Path("conf.yml"), help="recipe configuration (YAML)")
    args, rest = parser.parse_known_args(argv)
    try:
        conf = apply_overrides(load_conf(args.conf), rest)
    except ConfigError as err:
        parser.error(str(err))
    return conf, args


def flat(conf: Conf) -> Dict[str, Any]:
    """All keys of all sections in one mapping (keys are unique across sections)."""
    return {key: value for values in conf.values() for key, value in values.items()}


def dump_conf(conf: Conf, path: Path) -> None:
    """Write ``conf`` as YAML (sections kept in order)."""
    from .io_utils import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(yaml.safe_dump(conf, sort_keys=False))


def _main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m asteroid_avspeech.config --conf conf.yml [--key value ...]``: print the resolved conf."""
    conf, _ = parse_conf(argv, description=_main.__doc__)
    print(yaml.safe_dump(conf, sort_keys=False), end="")


if __name__ == "__main__":
    _main()
