"""A byte-level BPE (byte-pair encoding) tokenizer written out: training with pair counts kept
up to date after each merge, encoding, decoding, saving and loading.

Byte-level means the starting vocabulary is the 256 byte values, so any text (any language,
emoji, an empty string) encodes without an unknown token and decodes back exactly. Training
repeats one step: count how often each pair of neighbouring tokens occurs, and merge the most
frequent pair into a new token. Text is first cut into chunks (a word with its leading space,
a run of digits, of punctuation or of spaces, as GPT-2 does) and merges never cross a chunk.

Example::

    tok = BPETokenizer.train(texts, vocab_size=1000, special_tokens=["<|endoftext|>"])
    ids = tok.encode("A joy from start to finish.<|endoftext|>")
    assert tok.decode(ids) == "A joy from start to finish.<|endoftext|>"
    tok.save("artifacts/bpe.json"); tok = BPETokenizer.load("artifacts/bpe.json")
"""

from __future__ import annotations

import heapq
import json
import os
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

#: How text is cut into chunks before BPE (GPT-2's rule, written for Python's ``re``):
#: English contractions, a word with its leading space, digits, punctuation, and spaces
#: (a run of spaces leaves its last one to the word that follows).
CHUNK_PATTERN = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"
)

Pair = tuple[int, int]


def split_chunks(text: str) -> list[str]:
    """Cut ``text`` into the chunks BPE works inside (:data:`CHUNK_PATTERN`); joined again
    they give ``text`` back exactly. ``split_chunks("Hi there!") == ["Hi", " there", "!"]``."""
    return CHUNK_PATTERN.findall(text)


def count_pairs(words: dict[tuple[int, ...], int]) -> Counter[Pair]:
    """How often each pair of neighbouring tokens occurs in ``words``, a mapping from a chunk
    (a tuple of token ids) to how many times the chunk occurs in the training text."""
    counts: Counter[Pair] = Counter()
    for word, freq in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += freq
    return counts


def merge_pair(word: Sequence[int], pair: Pair, new_id: int) -> tuple[int, ...]:
    """``word`` with every occurrence of ``pair`` replaced by ``new_id``, left to right and
    without overlaps: merging (7, 7) in (7, 7, 7) gives (new_id, 7)."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def best_pair(counts: dict[Pair, int]) -> Pair:
    """The pair to merge next: the most frequent, and among equally frequent pairs the smallest
    ``(a, b)``, so that training is deterministic."""
    return min(counts, key=lambda p: (-counts[p], p))


def chunk_counts(texts: Iterable[str]) -> dict[tuple[int, ...], int]:
    """Every distinct chunk of ``texts`` (:func:`split_chunks`) as a tuple of its UTF-8 bytes,
    with how many times it occurs: the input of BPE training."""
    chunks = Counter(c for text in texts for c in split_chunks(text))
    return {tuple(c.encode("utf-8")): n for c, n in chunks.items()}


def train_merges(words: dict[tuple[int, ...], int], n_merges: int) -> list[Pair]:
    """Learn up to ``n_merges`` merges from ``words`` (see :func:`chunk_counts`); merge ``k``
    creates token ``256 + k``. The pair counts are computed once and then kept up to date: a
    merge only changes the chunks that contain its pair, so only their pairs are recounted
    (an index remembers which chunks hold each pair, and a heap finds the most frequent pair),
    which makes training take seconds instead of minutes. Stops early when no pair is left."""
    vocab = list(words)
    freqs = [words[w] for w in vocab]
    counts = count_pairs(words)
    where: dict[Pair, set[int]] = defaultdict(set)
    for i, word in enumerate(vocab):
        for pair in zip(word, word[1:]):
            where[pair].add(i)
    heap = [(-n, pair) for pair, n in counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg or -neg <= 0:
            continue  # a stale entry: the count changed after it was pushed
        new_id = 256 + len(merges)
        merges.append(pair)
        changed: set[Pair] = set()
        for i in where.pop(pair):
            word = vocab[i]
            merged = merge_pair(word, pair, new_id)
            if merged == word:
                continue
            for p in zip(word, word[1:]):
                counts[p] -= freqs[i]
                changed.add(p)
            for p in zip(merged, merged[1:]):
                counts[p] += freqs[i]
                where[p].add(i)
                changed.add(p)
            vocab[i] = merged
        for p in changed:
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p))
            else:
                del counts[p]
    return merges


class BPETokenizer:
    """A byte-level BPE tokenizer: ids 0-255 are the bytes, ``256 + k`` is merge ``k``, and the
    special tokens (whole strings such as ``"<|endoftext|>"`` that are never split) come last.
    Build one with :meth:`train` or :meth:`load`."""

    def __init__(self, merges: Sequence[Pair], special_tokens: Sequence[str] = ()) -> None:
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: 256 + k for k, pair in enumerate(self.merges)}
        self.vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in self.ranks.items():
            if a >= new_id or b >= new_id:
                raise ValueError(f"merge {new_id - 256} ({a}, {b}) uses a token made after it.")
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        if len(set(special_tokens)) != len(special_tokens) or "" in special_tokens:
            raise ValueError(f"special tokens must be distinct and non-empty: {special_tokens}")
        first = 256 + len(self.merges)
        self.special_tokens = {s: first + k for k, s in enumerate(special_tokens)}
        self.special_ids = {i: s for s, i in self.special_tokens.items()}
        longest_first = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = (
            re.compile("(" + "|".join(map(re.escape, longest_first)) + ")")
            if longest_first
            else None
        )
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str] = ()
    ) -> BPETokenizer:
        """Learn a tokenizer whose vocabulary has ``vocab_size`` tokens in all (256 bytes, the
        merges, then ``special_tokens``) from ``texts``; special tokens in the texts are not
        learnt from. Raises ``ValueError`` when ``vocab_size`` leaves no room for the bytes and
        the special tokens."""
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(
                f"vocab_size={vocab_size} is smaller than 256 bytes + {len(special_tokens)} "
                f"special tokens: use at least {256 + len(special_tokens)}."
            )
        if special_tokens:
            split = re.compile("|".join(map(re.escape, special_tokens)))
            texts = (piece for text in texts for piece in split.split(text))
        return cls(train_merges(chunk_counts(texts), n_merges), special_tokens)

    @property
    def vocab_size(self) -> int:
        """The number of token ids: bytes, merges and special tokens."""
        return 256 + len(self.merges) + len(self.special_tokens)

    def _encode_chunk(self, chunk: str) -> list[int]:
        """The ids of one chunk: its bytes, then merges applied lowest rank (earliest) first,
        which gives what applying the merges in training order would give."""
        if chunk in self._cache:
            return self._cache[chunk]
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, 1 << 62))
            if pair not in self.ranks:
                break
            ids = list(merge_pair(ids, pair, self.ranks[pair]))
        if len(self._cache) < 200_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """The token ids of ``text``. With ``allow_special`` (the default) a special token
        written in the text becomes its single id; without it, it is encoded as ordinary text."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}: decode bytes first.")
        pieces = self._special_re.split(text) if allow_special and self._special_re else [text]
        ids: list[int] = []
        for piece in pieces:
            if piece in self.special_tokens and allow_special:
                ids.append(self.special_tokens[piece])
            else:
                for chunk in split_chunks(piece):
                    ids.extend(self._encode_chunk(chunk))
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes token ``token_id`` stands for (a special token: its UTF-8 text)."""
        if token_id in self.special_ids:
            return self.special_ids[token_id].encode("utf-8")
        if token_id not in self.vocab:
            raise ValueError(
                f"token id {token_id} is not in this tokenizer (ids 0-{self.vocab_size - 1})."
            )
        return self.vocab[token_id]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``. Byte sequences that are not valid UTF-8 (a sequence cut in the
        middle of a character, as a language model can generate) become U+FFFD."""
        return b"".join(self.token_bytes(int(i)) for i in ids).decode("utf-8", errors="replace")

    def save(self, path: str | Path) -> Path:
        """Write the merges and special tokens to a JSON file at ``path`` (atomically: a
        temporary file renamed into place) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": "course-bpe-v1",
            "merges": [list(m) for m in self.merges],
            "special_tokens": list(self.special_tokens),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`; a file of another kind raises an error
        that says so."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != "course-bpe-v1":
                raise KeyError("format")
            return cls([tuple(m) for m in data["merges"]], data["special_tokens"])
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{path} is not a tokenizer saved by BPETokenizer.save ({err!r}); "
                "train one with BPETokenizer.train and save it."
            ) from err

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)})"
        )
