"""Locate WordNet for METEOR without any download.

NLTK's WordNet reader wants NLTK's own corpus layout; Debian's ``wordnet-base``
ships the same WordNet 3.0 database files but not the ``lexnames`` index NLTK
reads first. We build a cache directory with copies of the Debian files plus that
index (the 45 lexicographer file names of WordNet 3.0, fixed by the format) and
point NLTK's reader at it.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

__all__ = ["WordNetUnavailable", "find_wordnet_dir", "load_wordnet"]

_DEBIAN_DIRS = ("/usr/share/wordnet", "/usr/share/WordNet", "/usr/local/share/wordnet")
_REQUIRED = ("data.noun", "index.noun", "data.verb", "index.verb", "data.adj", "index.adj")
_LEXNAMES = [
    ("adj.all", 3),
    ("adj.pert", 3),
    ("adv.all", 4),
    ("noun.Tops", 1),
    ("noun.act", 1),
    ("noun.animal", 1),
    ("noun.artifact", 1),
    ("noun.attribute", 1),
    ("noun.body", 1),
    ("noun.cognition", 1),
    ("noun.communication", 1),
    ("noun.event", 1),
    ("noun.feeling", 1),
    ("noun.food", 1),
    ("noun.group", 1),
    ("noun.location", 1),
    ("noun.motive", 1),
    ("noun.object", 1),
    ("noun.person", 1),
    ("noun.phenomenon", 1),
    ("noun.plant", 1),
    ("noun.possession", 1),
    ("noun.process", 1),
    ("noun.quantity", 1),
    ("noun.relation", 1),
    ("noun.shape", 1),
    ("noun.state", 1),
    ("noun.substance", 1),
    ("noun.time", 1),
    ("verb.body", 2),
    ("verb.change", 2),
    ("verb.cognition", 2),
    ("verb.communication", 2),
    ("verb.competition", 2),
    ("verb.consumption", 2),
    ("verb.contact", 2),
    ("verb.creation", 2),
    ("verb.emotion", 2),
    ("verb.motion", 2),
    ("verb.perception", 2),
    ("verb.possession", 2),
    ("verb.social", 2),
    ("verb.stative", 2),
    ("verb.weather", 2),
    ("adj.ppl", 3),
]


class WordNetUnavailable(RuntimeError):
    """No WordNet data could be found; METEOR cannot run."""


def _has_wordnet(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED)


def find_wordnet_dir() -> Path:
    """Return a directory NLTK's WordNet reader can open.

    Order: ``$RFTGRADE_WORDNET_DIR``, NLTK's own ``corpora/wordnet``, then Debian's
    ``wordnet-base`` files wrapped with a generated ``lexnames``.

    Raises:
        WordNetUnavailable: with the command that installs the data.
    """
    env = os.environ.get("RFTGRADE_WORDNET_DIR")
    if env and _has_wordnet(Path(env)) and (Path(env) / "lexnames").is_file():
        return Path(env)
    try:
        import nltk

        return Path(nltk.data.find("corpora/wordnet"))
    except LookupError:
        pass
    for candidate in _DEBIAN_DIRS:
        src = Path(candidate)
        if _has_wordnet(src):
            return _wrap_debian(src)
    raise WordNetUnavailable(
        "METEOR needs WordNet data: install Debian's `wordnet-base` "
        "(apt-get install wordnet-base), or NLTK's `wordnet` corpus, or set RFTGRADE_WORDNET_DIR"
    )


def _wrap_debian(src: Path) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rftgrade"
    target = cache / "wordnet"
    if (target / "lexnames").is_file() and _has_wordnet(target):
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="wordnet.", dir=cache))
    except OSError:
        tmp = Path(tempfile.mkdtemp(prefix="rftgrade-wordnet."))
        target = tmp
    for entry in src.iterdir():
        if entry.is_file():
            # NLTK's hardened reader refuses symlinks out of its root and hard
            # links alike, so the files are copied (about 30 MB, once).
            shutil.copyfile(entry, tmp / entry.name)
    lines = [f"{i:02d}\t{name}\t{pos}\n" for i, (name, pos) in enumerate(_LEXNAMES)]
    (tmp / "lexnames").write_text("".join(lines))
    if tmp != target:
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; use theirs
            return target if (target / "lexnames").is_file() else tmp
    return target


@functools.lru_cache(maxsize=1)
def load_wordnet() -> Any:
    """Load (once) and return an NLTK ``WordNetCorpusReader``."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    path = find_wordnet_dir()
    # NLTK only opens corpus files under its registered data roots.
    if str(path) not in nltk.data.path:
        nltk.data.path.append(str(path))

    class _EnglishWordNet(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            # NLTK maps other WordNet versions onto its own downloaded corpus; we
            # *are* the WordNet in use, so there is nothing to map (and no corpus).
            return None

    with warnings.catch_warnings():
        # "multilingual functions are not available": METEOR needs English only.
        warnings.simplefilter("ignore", UserWarning)
        reader = _EnglishWordNet(str(path), None)
    return reader
