"""Natural-ish random English sentences from a small grammar, deterministic for a numpy Generator."""
import numpy as np

_WORDS = {
    "name": "Anna Peter Maria John Laura David Sophie Martin Emma Oliver Grace Thomas Lucy Daniel Clara Henry".split(),
    "adj": (
        "old small bright quiet heavy warm cold green yellow simple busy gentle careful broken famous "
        "empty narrow tall lovely strange"
    ).split(),
    "noun": (
        "garden kitchen window letter table river bottle market station teacher doctor bicycle "
        "blanket picture morning kettle mountain village office basket orange bridge pocket concert"
    ).split(),
    "verb_past": (
        "opened painted carried found moved cleaned watched needed bought fixed visited noticed "
        "borrowed dropped measured"
    ).split(),
    "verb": "open paint carry find move clean watch need buy fix visit borrow measure remember".split(),
    "prep": "near behind under beside across inside above".split(),
    "time": "today tomorrow yesterday tonight again later soon".split(),
    "adv": "slowly quietly quickly happily carefully finally suddenly".split(),
}
_TEMPLATES = (
    "the {adj} {noun} is {prep} the {noun}",
    "{name} {verb_past} the {adj} {noun} {time}",
    "please {verb} the {noun} {prep} the {noun}",
    "we {adv} {verb_past} a {adj} {noun}",
    "did {name} {verb} the {noun} {time}",
    "my {noun} was {adj} and {adj}",
    "{name} and {name} will {verb} the {noun}",
    "there is a {adj} {noun} {prep} my {noun}",
    "could you {verb} this {adj} {noun} for me",
    "{name} {adv} {verb_past} her {noun}",
    "the {noun} looks {adj} {time}",
    "I think the {noun} is {adj}",
)


def random_sentence(rng: np.random.Generator) -> str:
    """One sentence, e.g. ``"Anna painted the old kettle yesterday."``."""
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    parts = template.split()
    words = []
    for part in parts:
        if part.startswith("{"):
            choices = _WORDS[part.strip("{}")]
            words.append(choices[rng.integers(len(choices))])
        else:
            words.append(part)
    for i, word in enumerate(words[:-1]):  # "a old" -> "an old"
        if word == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    text = " ".join(words)
    ending = "?" if template.startswith(("did", "could")) else "."
    return text[0].upper() + text[1:] + ending
