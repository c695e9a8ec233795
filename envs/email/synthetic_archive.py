"""A large synthetic email archive for benchmarks: Zipf-distributed words, many inboxes, fast.

``generate_archive(num_emails, seed, owners=50)`` yields :class:`Email` s deterministically (same
arguments, same emails). It exists to measure the store at scale (500,000 emails in seconds), not
to ask questions about: the text is word salad drawn from a Zipf law over a made-up vocabulary,
like the word-frequency skew of real mail, so keyword doclists have realistic lengths.

Speed: text is made in chunks of emails with numpy — word ids for the whole chunk in one draw,
then the words' bytes gathered from one vocabulary buffer with a single fancy-index — so Python
touches each email once, not each word. Dates are drawn uniformly (not sorted), so the store's
date sort is exercised.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from horizongym.envs.email.types import Email
from horizongym.envs.synthetic_names import fresh_word

__all__ = ["archive_words", "generate_archive"]

_SYLLABLES = [c + v for c in "bdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
_VOCAB = 40_000
_ZIPF = 1.07
_CHUNK = 10_000
_START = np.datetime64("2000-01-01T00:00:00")
_SPAN_S = 2 * 365 * 86400


def archive_words(seed: int = 0, size: int = _VOCAB) -> list[str]:
    """The made-up vocabulary, most frequent word first (2–4 syllables each, all distinct)."""
    rng = np.random.default_rng([seed, 1])

    def make() -> str:
        n = int(rng.integers(2, 5))
        return "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), n))

    seen: set[str] = set()
    return [fresh_word(make, seen) for _ in range(size)]


def _zipf_cdf(size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** _ZIPF
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def generate_archive(num_emails: int, seed: int = 0, owners: int = 50) -> Iterator[Email]:
    """``num_emails`` synthetic emails over ``owners`` inboxes (sizes vary about tenfold), deterministic."""
    rng = np.random.default_rng([seed, 2])
    words = archive_words(seed)
    encoded = [w.encode() for w in words]
    lengths = np.array([len(w) + 1 for w in encoded], dtype=np.int64)  # each word is followed by a space
    buffer = np.frombuffer(b"".join(w + b" " for w in encoded), dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cdf = _zipf_cdf(len(words))
    owner_ids = [f"user{i:03d}" for i in range(owners)]
    owner_addresses = [f"{o}@example.com" for o in owner_ids]
    share = rng.pareto(1.5, owners) + 1.0
    share /= share.sum()
    contacts = [f"{words[i]}.{words[i + 1]}@{words[i + 2]}.com" for i in range(1000, 7000, 3)]
    done = 0
    while done < num_emails:
        n = min(_CHUNK, num_emails - done)
        body_len = rng.integers(20, 100, n)
        subject_len = rng.integers(2, 8, n)
        counts = body_len + subject_len
        ids = np.searchsorted(cdf, rng.random(int(counts.sum())))
        word_len = lengths[ids]
        ends = np.cumsum(word_len)
        index = np.repeat(starts[ids] - (ends - word_len), word_len) + np.arange(int(ends[-1]))
        text = buffer[index].tobytes().decode()
        word_end = np.concatenate([[0], ends])
        first = np.concatenate([[0], np.cumsum(counts)])
        who = rng.choice(owners, n, p=share)
        senders = rng.integers(0, len(contacts), n)
        extra = rng.integers(0, len(contacts), (n, 2))
        n_extra = rng.integers(0, 3, n)
        seconds = rng.integers(0, _SPAN_S, n)
        dates = (_START + seconds.astype("timedelta64[s]")).astype(str)
        for i in range(n):
            a, b, c = int(word_end[first[i]]), int(word_end[first[i] + subject_len[i]]), int(word_end[first[i + 1]])
            owner = int(who[i])
            yield Email(
                message_id=f"<{seed}.{done + i}@synthetic.example>",
                date=str(dates[i]) + "+00:00",
                sender=contacts[int(senders[i])],
                to=(owner_addresses[owner], *(contacts[int(x)] for x in extra[i, : n_extra[i]])),
                cc=(),
                bcc=(),
                subject=text[a : b - 1],
                body=text[b : c - 1],
                owner=owner_ids[owner],
                folder="inbox",
            )
        done += n
