r"""Token sequences that ship here: a character-level language model and a copy task (task tokens).

Both give inputs ``[N, T]`` of token ids and per-position targets ``[N, T]`` (the next token;
:data:`~initsweep.data.bundle.IGNORE_INDEX` where a position is not scored), and go through
:func:`~initsweep.data.transforms.finish` like every builder. Everything is offline and seeded.
"""

from __future__ import annotations

import torch

from initsweep.data.bundle import IGNORE_INDEX, DataBundle
from initsweep.data.transforms import finish
from initsweep.errors import invalid

# the docs' few non-ASCII characters, as ASCII; anything else non-ASCII becomes "?"
_ASCII = {"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "…": "...", "ß": "ss"}


def pydoc_text() -> str:
    """The text of Python's own documentation topics (``pydoc_data.topics``, ~465 KB), in the
    sorted order of its topics, in ASCII (the few curly quotes and dashes made straight).

    The module ships with CPython and its text follows the running Python's version, so a
    study's numbers depend on it (``summary.json`` records the Python version).
    """
    from pydoc_data.topics import topics

    text = "".join(topics[name] for name in sorted(topics))
    return "".join(ch if ch.isascii() else _ASCII.get(ch, "?") for ch in text)


def vocabulary(text: str) -> str:
    """The characters of ``text``, sorted: nanoGPT's ``shakespeare_char`` vocabulary (94 for
    CPython 3.11's docs; a uniform prediction then costs ln 94 = 4.543)."""
    return "".join(sorted(set(text)))


def encode(text: str, chars: str) -> torch.Tensor:
    """Token ids of ``text`` in ``chars`` (``int64``)."""
    index = {ch: i for i, ch in enumerate(chars)}
    return torch.tensor([index[ch] for ch in text], dtype=torch.long)


def decode(ids, chars: str) -> str:
    return "".join(chars[int(i)] for i in ids)


def _windows(ids: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of ``block_size + 1`` tokens: inputs and next-token targets."""
    n = len(ids) // (block_size + 1)
    w = ids[: n * (block_size + 1)].view(n, block_size + 1)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def pydoc_chars(
    block_size: int = 64,
    val_fraction: float = 0.1,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
) -> DataBundle:
    r"""A character-level language model on :func:`pydoc_text`: predict every next character.

    The text is cut into non-overlapping windows of ``block_size + 1`` characters; a sample is
    the first ``block_size`` (input ids) and the same shifted by one (targets), so every
    position is scored. The last ``val_fraction`` of the text is the validation split, in one
    piece (nanoGPT's ``shakespeare_char`` split: no window of it borders a training window but
    the first); ``test_fraction`` holds out that share of the rest, ``limit`` caps each split.
    The vocabulary is the text's characters (:func:`vocabulary`); a zero output layer predicts
    the uniform distribution over them: loss :math:`\ln V`.
    """
    if not (isinstance(block_size, int) and block_size >= 1):
        raise invalid("dataset.block_size", block_size, "must be an integer >= 1")
    if not (isinstance(val_fraction, (int, float)) and 0.0 < val_fraction < 1.0):
        raise invalid("dataset.val_fraction", val_fraction, "must be in (0, 1)")
    text = pydoc_text()
    chars = vocabulary(text)
    ids = encode(text, chars)
    cut = round(len(ids) * (1 - val_fraction))
    x, y = _windows(ids[:cut], block_size)
    val = _windows(ids[cut:], block_size)
    if len(val[0]) == 0:
        raise invalid("dataset.block_size", block_size, "leaves no validation window: lower it")
    return finish(
        "pydoc_chars",
        "tokens",
        x,
        y,
        num_classes=len(chars),
        class_names=list(chars),
        val=val,
        val_fraction=None,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
    )


def copy_task(
    length: int = 8,
    symbols: int = 8,
    samples: int = 2000,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
) -> DataBundle:
    r"""The copy task: read ``length`` random symbols and a separator, then repeat them.

    A sequence is :math:`a_1 \dots a_k\, \#\, a_1 \dots a_k` with :math:`a_i` uniform over
    ``symbols`` symbols (ids ``0 … symbols-1``; ``#`` is id ``symbols``), fed to the model
    without its last token. Only the answer is scored: from ``#`` on, each position predicts the
    next copied symbol; the first ``length`` positions, which nothing lets a model predict, hold
    :data:`~initsweep.data.bundle.IGNORE_INDEX`. A model that ignores its input scores
    :math:`\ln(\text{symbols})` at best (:math:`\ln(\text{symbols} + 1)` from a zero output
    layer); a transformer solves it by attending back ``length + 1`` positions (the copy task of
    `Neural Turing Machines` - Graves, Wayne & Danihelka (2014), §4.1, as a token sequence).
    """
    for key, value, low in (
        ("length", length, 1),
        ("symbols", symbols, 2),
        ("samples", samples, 4),
    ):
        if not (isinstance(value, int) and value >= low):
            raise invalid(f"dataset.{key}", value, f"must be an integer >= {low}")
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, symbols, (samples, length), generator=g)
    sep = torch.full((samples, 1), symbols)
    seq = torch.cat([a, sep, a], dim=1)
    x, y = seq[:, :-1].contiguous(), seq[:, 1:].clone()
    y[:, :length] = IGNORE_INDEX
    return finish(
        "copy",
        "tokens",
        x,
        y,
        num_classes=symbols + 1,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
    )
