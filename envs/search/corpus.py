"""A document store on disk, memory-mapped on open: millions of documents, few Python objects.

Layout of a corpus folder (format ``horizongym-corpus-v1``):

- ``blob.bin``: the UTF-8 bytes of every document's id, title and text, one after another;
- ``offsets.npy``: int64, ``3·n + 1`` entries; document ``r`` is
  ``id = blob[o[3r]:o[3r+1]]``, ``title = blob[o[3r+1]:o[3r+2]]``, ``text = blob[o[3r+2]:o[3r+3]]``;
- ``id_hash.npy`` / ``id_rows.npy``: the 64-bit BLAKE2b hashes of the ids, sorted, and the row of
  each, so ``row_of(id)`` is a binary search (hash collisions are resolved by comparing ids);
- ``meta.json``: format, number of documents and ``content_hash``.

``content_hash`` is ``sha256(offsets ‖ blob)``: it covers every id, title and text and where each
one ends, so two corpora share it exactly when they hold the same documents in the same order.
Indexes are cached under it.

``Corpus.build`` streams: it holds one document at a time (plus 32 bytes of bookkeeping per
document), writes into a temporary sibling folder and renames it into place under a file lock,
so concurrent builders of one folder are safe.
"""

from __future__ import annotations

import hashlib
import json
import mmap
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from horizongym.cache import build_atomically, cached
from horizongym.envs.search.types import Document

FORMAT = "horizongym-corpus-v1"


def _id_hash(doc_id: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id, digest_size=8).digest(), "little")


def write_corpus(documents: Iterable[Document], directory: Path, *, progress: bool = False) -> str:
    """Write ``documents`` into the (existing, empty) ``directory``; return the content hash.

    Raises ``ValueError`` on a repeated document id.
    """
    directory = Path(directory)
    offsets = array("q", [0])
    hashes = array("Q")
    blob_hash = hashlib.sha256()
    position = 0
    with open(directory / "blob.bin", "wb", buffering=1 << 20) as blob:
        for document in tqdm(documents, desc="corpus", unit="doc", disable=not progress, mininterval=1.0):
            doc_id = document.id.encode()
            hashes.append(_id_hash(doc_id))
            for field in (doc_id, document.title.encode(), document.text.encode()):
                blob.write(field)
                blob_hash.update(field)
                position += len(field)
                offsets.append(position)
    offsets_np = np.frombuffer(offsets, dtype=np.int64) if len(offsets) else np.zeros(1, np.int64)
    hashes_np = np.frombuffer(hashes, dtype=np.uint64) if len(hashes) else np.zeros(0, np.uint64)
    order = np.argsort(hashes_np, kind="stable")
    sorted_hashes = hashes_np[order]
    _check_unique_ids(directory / "blob.bin", offsets_np, sorted_hashes, order)
    np.save(directory / "offsets.npy", offsets_np)
    np.save(directory / "id_hash.npy", sorted_hashes)
    np.save(directory / "id_rows.npy", order.astype(np.int64))
    content = hashlib.sha256()
    content.update(offsets_np.astype("<i8").tobytes())
    content.update(blob_hash.digest())
    content_hash = content.hexdigest()
    meta = {"format": FORMAT, "num_documents": len(hashes_np), "content_hash": content_hash}
    (directory / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return content_hash


def _check_unique_ids(blob_path: Path, offsets: np.ndarray, sorted_hashes: np.ndarray, order: np.ndarray) -> None:
    same = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if not len(same):
        return
    blob = blob_path.read_bytes()
    for i in same.tolist():
        a, b = int(order[i]), int(order[i + 1])
        id_a = blob[offsets[3 * a] : offsets[3 * a + 1]]
        if id_a == blob[offsets[3 * b] : offsets[3 * b + 1]]:
            raise ValueError(f"document id {id_a.decode()!r} appears twice (rows {min(a, b)} and {max(a, b)})")


class Corpus:
    """Documents on disk, memory-mapped: ``corpus[row]``, ``get(id)``, ``row_of(id)``, iteration.

    Open one with ``Corpus.open(folder)``, write one with ``Corpus.build(documents, folder)``.
    Rows are the documents' positions in build order. A corpus pickles as its folder path.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        meta = json.loads((self.directory / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{self.directory} is not a {FORMAT} corpus (format {meta.get('format')!r})")
        self.content_hash: str = meta["content_hash"]
        self._n: int = int(meta["num_documents"])
        # plain ndarray views of the maps: slicing a np.memmap costs a subclass finalize per slice
        self._offsets = np.load(self.directory / "offsets.npy", mmap_mode="r").view(np.ndarray)
        self._id_hash = np.load(self.directory / "id_hash.npy", mmap_mode="r")
        self._id_rows = np.load(self.directory / "id_rows.npy", mmap_mode="r")
        self._blob: mmap.mmap | bytes
        if (self.directory / "blob.bin").stat().st_size == 0:
            self._blob = b""
        else:
            with open(self.directory / "blob.bin", "rb") as f:
                self._blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    @classmethod
    def open(cls, directory: Path | str) -> Corpus:
        """Open the corpus in ``directory`` (nothing is read until asked for)."""
        return cls(directory)

    @classmethod
    def build(
        cls,
        documents: Iterable[Document],
        directory: Path | str,
        *,
        exist_ok: bool = False,
        progress: bool = False,
    ) -> Corpus:
        """Write ``documents`` (streamed, any iterable) as a corpus in ``directory`` and open it.

        The folder appears whole or not at all (temporary sibling, then rename, under a file lock).
        An existing corpus there is replaced, unless ``exist_ok``: then it is opened as it is and
        ``documents`` is not consumed (build-if-missing, safe when processes race).
        """
        target = Path(directory)

        def write(tmp: Path) -> None:
            write_corpus(documents, tmp, progress=progress)

        build_atomically(target, write, replace=not exist_ok)
        return cls(target)

    # -- access ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def _fields(self, row: int) -> tuple[str, str, str]:
        a, b, c, d = self._offsets[3 * row : 3 * row + 4].tolist()
        blob = self._blob
        return blob[a:b].decode(), blob[b:c].decode(), blob[c:d].decode()

    def __getitem__(self, row: int) -> Document:
        row = int(row)
        if row < 0:
            row += self._n
        if not 0 <= row < self._n:
            raise IndexError(f"row {row} out of range for a corpus of {self._n} documents")
        return Document(*self._fields(row))

    def id_at(self, row: int) -> str:
        """The id of the document at ``row`` (without decoding its text)."""
        a, b = self._offsets[3 * row : 3 * row + 2].tolist()
        return self._blob[a:b].decode()

    def row_of(self, doc_id: str) -> int:
        """The row of the document with id ``doc_id``; ``KeyError`` if there is none."""
        key = doc_id.encode()
        h = np.uint64(_id_hash(key))
        lo = int(np.searchsorted(self._id_hash, h, side="left"))
        hi = int(np.searchsorted(self._id_hash, h, side="right"))
        for row in self._id_rows[lo:hi].tolist():
            a, b = self._offsets[3 * row : 3 * row + 2].tolist()
            if self._blob[a:b] == key:
                return int(row)
        raise KeyError(doc_id)

    def get(self, doc_id: str) -> Document:
        """The document with id ``doc_id``; ``KeyError`` if there is none."""
        return self[self.row_of(doc_id)]

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        try:
            self.row_of(doc_id)
        except KeyError:
            return False
        return True

    def _row_offsets(self) -> Iterator[tuple[int, int, int, int]]:
        """Each row's (id, title, text, end) byte offsets, read from the map a chunk at a time."""
        chunk = 4096
        for start in range(0, self._n, chunk):
            stop = min(self._n, start + chunk)
            offsets = self._offsets[3 * start : 3 * stop + 1].tolist()
            for i in range(0, 3 * (stop - start), 3):
                yield offsets[i], offsets[i + 1], offsets[i + 2], offsets[i + 3]

    def __iter__(self) -> Iterator[Document]:
        blob = self._blob
        for a, b, c, d in self._row_offsets():
            yield Document(blob[a:b].decode(), blob[b:c].decode(), blob[c:d].decode())

    def texts(self, *, with_titles: bool = True) -> Iterator[str]:
        """Each document's indexed text, in row order: ``title + "\\n" + text`` (or the text alone)."""
        blob = self._blob
        for _, b, c, d in self._row_offsets():
            yield (blob[b:c].decode() + "\n" + blob[c:d].decode()) if with_titles else blob[c:d].decode()

    def __reduce__(self) -> tuple[Callable[..., Corpus], tuple[Any, ...]]:
        return (Corpus.open, (str(self.directory),))

    def __repr__(self) -> str:
        return f"Corpus({str(self.directory)!r}, documents={self._n}, content_hash={self.content_hash[:12]!r})"


def cached_corpus(key: str, documents: Callable[[], Iterable[Document]], *, progress: bool = False) -> Corpus:
    """The corpus cached under ``key`` (see ``cache.cached``), written from ``documents()`` if missing.

    ``documents`` is a factory so nothing is generated when the corpus is already cached; the key
    should hash whatever determines the documents (generator parameters and code version).
    """

    def write(tmp: Path) -> None:
        write_corpus(documents(), tmp, progress=progress)

    return Corpus.open(cached(f"corpus-{key}", write))
