"""A vault repository on an object store: config, key slots, packs, index, manifests.

This module is the only writer of repository objects. Callers hand it plaintext blobs
and manifests; it knows no file systems (that is the archiver's job).

    repo = Repository.init(backend, password="pw")            # or raw_key=..., wrapper=...
    bid = repo.add_blob("data", b"hello")                     # dedup + compress + encrypt
    rp_id = repo.save_manifest({"tree": "...", "time": ...})  # flushes, then commits
    Repository.open(backend, password="pw").get_blob(bid)     # authenticated read

Write order (the format's invariants): a pack is uploaded whole, then its index
segment, and a recovery point manifest only after every pack and index segment it needs
(:meth:`flush`). Thread safety: ``add_blob``, ``add_blob_async``, ``has_blob`` and
``get_blob`` may be called from many threads at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from snowvault.engine import (
    compression,
    errors,
    index,
    index_cache,
    keyed_packs,
    pack_spool,
    packs,
)
from snowvault.engine import config as config_mod
from snowvault.engine.backends.base import Backend
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.chunker import Chunker, ChunkerParams
from snowvault.engine.crypto import KdfParams, KeyWrapper, RepositoryKeys, keyslots, primitives

BlobKind = Literal["data", "tree"]

DEFAULT_MAX_INFLIGHT = 8 * 1024 * 1024
"""Bytes of blobs handed to the pool but not yet packed: eight ~1 MiB chunks keep two
blob threads busy; 16 MiB only held more in memory (the full set's initial backup,
one process: 124.5 vs 114.5 MiB peak RSS, docs/benchmarks.md "Issue 15, backup")."""
MANIFEST_PREFIX = "recovery-points/"
INDEX_LOAD_ATTEMPTS = 5
"""Listings of index/ tried when segments vanish under a concurrent prune (each prune
lets one listing fail; more than four in a row is not a race but a lost segment)."""
MANIFEST_AAD = b"snowvault/recovery-point/v1|"


@dataclass
class _OpenPack:
    """One pack being filled: sealed blobs appended to one buffer (no join copy later),
    or on a local store to a temporary file (``spool``, :mod:`.pack_spool`)."""

    buf: bytearray = field(default_factory=bytearray)
    entries: list[packs.PackEntry] = field(default_factory=list)
    spool: pack_spool.PackSpool | None = None

    @property
    def size(self) -> int:
        return len(self.buf) if self.spool is None else self.spool.size

    def add(self, nonce: bytes, sealed: bytes | memoryview) -> None:
        if self.spool is None:
            self.buf += nonce
            self.buf += sealed
        else:
            self.spool.write(nonce, sealed)

    def add_run(self, blobs: memoryview) -> None:
        """Sealed blobs already joined (``nonce || sealed`` each), written at once."""
        if self.spool is None:
            self.buf += blobs
        else:
            self.spool.write(blobs)


class _Inflight:
    """Bounds the bytes handed to the pool but not yet packed (flat memory)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._tasks = 0
        self._cond = threading.Condition()

    def acquire(self, n: int) -> None:
        with self._cond:
            while self._used > 0 and self._used + n > self._limit:
                self._cond.wait()
            self._used += n
            self._tasks += 1

    def release(self, n: int) -> None:
        with self._cond:
            self._used -= n
            self._tasks -= 1
            self._cond.notify_all()

    def wait_idle(self) -> None:
        with self._cond:
            while self._tasks:
                self._cond.wait()


class Repository:
    def __init__(
        self,
        backend: Backend,
        cfg: config_mod.RepoConfig,
        keys: RepositoryKeys,
        *,
        workers: int | None = None,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT,
        cache: index_cache.Entry | None = None,
        load_index: bool = True,
    ) -> None:
        self.backend = backend
        self._cache = cache
        self.config = cfg
        self._keys = keys
        self._local = threading.local()
        self._index = index.MasterIndex()
        self._pack_keys: dict[str, keyed_packs.PackKey] = {}
        self._pack_key_records = 0
        self._shadowed: dict[bytes, index.Location] = {}
        self._pending: set[bytes] = set()
        self._lock = threading.Lock()
        self._open: dict[int, _OpenPack] = {}
        self._idle: dict[int, list[_OpenPack]] = {}  # spooled open packs no thread writes
        self._pack_lock = threading.Lock()
        self._workers = workers or max(2, os.cpu_count() or 2)
        self._pool: ThreadPoolExecutor | None = None
        self._uploader: ThreadPoolExecutor | None = None
        self._upload_slots = threading.BoundedSemaphore(1)
        self._uploads: list[Future[None]] = []
        self._upload_error: BaseException | None = None
        self._inflight = _Inflight(max_inflight_bytes)
        self._spool_root = spool_root(backend)
        self.stats_added_blobs = 0
        self.stats_added_bytes = 0
        self.stats_stored_bytes = 0
        if load_index:  # else the caller's lock loads it (locks.locked_repository)
            self._load_index()

    # ----------------------------------------------------------------- life cycle
    @classmethod
    def init(
        cls,
        backend: Backend,
        *,
        password: str | None = None,
        raw_key: bytes | None = None,
        wrapper: KeyWrapper | None = None,
        kdf: KdfParams | None = None,
        pack_size: int = config_mod.DEFAULT_PACK_SIZE,
        chunker: ChunkerParams | None = None,
        compression_level: int = compression.DEFAULT_LEVEL,
        **kwargs: Any,
    ) -> Repository:
        """Create a new repository; at least one of password / raw_key / wrapper is needed."""
        if password is None and raw_key is None and wrapper is None:
            raise errors.EngineError(detail="a new repository needs a passphrase or a key")
        if backend.exists("config"):
            raise errors.RepositoryExists(url=backend.location)
        keys = RepositoryKeys.generate()
        repo_id = primitives.random_bytes(32).hex()
        params = chunker or ChunkerParams()
        params = ChunkerParams(params.min_size, params.avg_size, params.max_size, keys.chunker_seed)
        cfg = config_mod.RepoConfig(repo_id, params, pack_size, compression_level)
        slots = []
        if password is not None:
            slots.append(
                keyslots.passphrase_slot(
                    keys.secret, password, repo_id, _new_slot_id(), kdf or KdfParams()
                )
            )
        if raw_key is not None:
            slots.append(keyslots.raw_slot(keys.secret, raw_key, repo_id, _new_slot_id()))
        if wrapper is not None:
            slots.append(keyslots.external_slot(keys.secret, wrapper, repo_id, _new_slot_id()))
        for slot in slots:
            backend.put(f"keys/{slot.id}", slot.to_bytes())
        backend.put("config", cfg.encode(keys.sealer()))
        return cls(backend, cfg, keys, **kwargs)

    @classmethod
    def open(
        cls,
        backend: Backend,
        *,
        password: str | None = None,
        raw_key: bytes | None = None,
        wrapper: KeyWrapper | None = None,
        cache: index_cache.StoreCache | None = None,
        derived: keyslots.Derivation | None = None,
        **kwargs: Any,
    ) -> Repository:
        """Open with one of the keys. With ``cache`` (a server's, for its many opens of
        one vault) the objects never rewritten under their names are read only once
        (engine/index_cache.py); the key still unwraps the secret every time. ``derived``:
        the passphrase's key being derived on a thread (:class:`keyslots.Derivation`)."""
        entry = None if cache is None else cache.entry(backend.location)
        names = None if entry is None else [info.name for info in backend.list("keys/")]
        fixed = None if entry is None or names is None else index_cache.fixed_objects(entry, names)
        try:
            config_bytes = backend.get("config") if fixed is None else fixed[0]
            header = config_mod.read_header(config_bytes)
        except errors.ObjectNotFound as exc:
            raise errors.RepositoryNotFound(url=backend.location) from exc
        except ValueError as exc:
            raise errors.IntegrityError(name="config", detail=str(exc)) from exc
        repo_id = header.get("id")
        if not isinstance(repo_id, str) or not repo_id:
            raise errors.IntegrityError(name="config", detail="has no repository id")
        if fixed is not None:
            slots = fixed[1]
        else:
            if names is None:
                names = [info.name for info in backend.list("keys/")]
            slots = [(name, backend.get(name)) for name in names]
        secret = _open_any_slot(slots, repo_id, password, raw_key, wrapper, derived)
        keys = RepositoryKeys(secret)
        try:
            cfg = config_mod.decode(header, keys.sealer())
        except primitives.AuthenticationFailed as exc:
            raise errors.IntegrityError(name="config", detail="fails authentication") from exc
        except (ValueError, KeyError, TypeError) as exc:  # bad base64 or parameters
            raise errors.IntegrityError(name="config", detail=f"damaged ({exc!r})") from exc
        if entry is not None and fixed is None:
            index_cache.remember_fixed(entry, config_bytes, slots)
        return cls(backend, cfg, keys, cache=entry, **kwargs)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for pool in (self._pool, self._uploader):
                if pool is not None:
                    pool.shutdown(wait=True)
            self._pool = self._uploader = None

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- key slots
    def add_key_slot(
        self,
        *,
        password: str | None = None,
        raw_key: bytes | None = None,
        wrapper: KeyWrapper | None = None,
        kdf: KdfParams | None = None,
    ) -> str:
        """Add a slot that opens this repository; no data is re-encrypted."""
        slot_id, rid, secret = _new_slot_id(), self.config.id, self._keys.secret
        if password is not None:
            slot = keyslots.passphrase_slot(secret, password, rid, slot_id, kdf or KdfParams())
        elif raw_key is not None:
            slot = keyslots.raw_slot(secret, raw_key, rid, slot_id)
        elif wrapper is not None:
            slot = keyslots.external_slot(secret, wrapper, rid, slot_id)
        else:
            raise errors.EngineError(detail="add_key_slot needs a passphrase or a key")
        self.backend.put(f"keys/{slot_id}", slot.to_bytes())
        return slot_id

    def list_key_slots(self) -> list[keyslots.KeySlot]:
        return [
            keyslots.KeySlot.from_bytes(self.backend.get(o.name))
            for o in self.backend.list("keys/")
        ]

    def remove_key_slot(self, slot_id: str) -> None:
        if len(self.list_key_slots()) <= 1:
            raise errors.EngineError(detail="refusing to remove the last key slot")
        self.backend.delete(f"keys/{slot_id}")

    # ----------------------------------------------------------------- blobs
    @property
    def chunker_params(self) -> ChunkerParams:
        return self.config.chunker

    def chunker(self) -> Chunker:
        return Chunker(self.config.chunker)

    def delegated_id_key(self) -> bytes:
        """The blob-id key (not the secret, not the encryption key), for an agent that
        chunks on its host and must name blobs as this repository does."""
        return self._keys.id_key

    def blob_id(self, data: bytes | memoryview) -> bytes:
        return self._keys.blob_id(data)

    def has_blob(self, blob_id: bytes) -> bool:
        """Whether this repository's own writer holds ``blob_id`` (a keyed pack's blob
        does not count: its id is only its writer's word, see :meth:`has_any_blob`)."""
        if blob_id in self._pending:
            return True
        loc = self._index.get(blob_id) if self._pack_keys else None
        if loc is not None:
            return loc.pack_id not in self._pack_keys or blob_id in self._shadowed
        return blob_id in self._index

    def own_blob_ids(self) -> list[bytes]:
        """Every id :meth:`has_blob` answers for: what a writer (its worker processes
        too) may deduplicate against, never an id only a keyed pack claims."""
        if not self._pack_keys:
            return self._index.blob_ids()
        keyed = self._pack_keys
        return [
            b for b, loc in self._index.items() if loc.pack_id not in keyed or b in self._shadowed
        ]

    def has_any_blob(self, blob_id: bytes) -> bool:
        """Whether any pack, keyed ones included, holds ``blob_id``."""
        return blob_id in self._index or blob_id in self._pending

    def add_blob(self, kind: BlobKind, data: bytes | memoryview) -> bytes:
        return self._store(packs.KINDS[kind], data, None)

    def add_blobs(self, kind: BlobKind, datas: Sequence[bytes | memoryview]) -> list[bytes]:
        """:meth:`add_blob` of each of ``datas`` on the calling thread; their ids, in
        order. One pass under the lock for the batch's deduplication, one ``getrandom``
        for its nonces and one write into the pack, not one of each a blob (a batch of
        small files, :mod:`.small_files`: ~40 us a small blob one by one against ~24 us
        of hashing, compressing and sealing). The packs get the bytes blob-by-blob adds
        would give them for the same nonces, cut at the same sizes."""
        code = packs.KINDS[kind]
        ids = [self._keys.blob_id(data) for data in datas]
        new = []
        with self._lock:
            for i, blob_id in enumerate(ids):
                if not self.has_blob(blob_id):  # a repeat within the batch is pending
                    self._pending.add(blob_id)
                    new.append(i)
        if new:
            level = self.config.compression_level
            sealed = bytearray()
            stored = self._sealer().seal_blobs_into(
                sealed,
                [(*compression.encode(datas[i], level), packs.blob_aad(code, ids[i])) for i in new],
            )
            runs = [(ids[i], n, len(datas[i])) for i, n in zip(new, stored, strict=True)]
            self._append_run(code, runs, sealed)
        return ids

    def add_blob_async(self, kind: BlobKind, data: bytes | memoryview) -> Future[bytes]:
        n = len(data)
        self._inflight.acquire(n)
        try:
            return self._get_pool().submit(self._store, packs.KINDS[kind], data, n)
        except BaseException:
            self._inflight.release(n)
            raise

    def _get_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sv-blob")
        return self._pool

    def _sealer(self) -> primitives.Sealer:
        sealer: primitives.Sealer | None = getattr(self._local, "sealer", None)
        if sealer is None:
            sealer = self._local.sealer = self._keys.sealer()
        return sealer

    def _store(self, kind: int, data: bytes | memoryview, reserved: int | None) -> bytes:
        try:
            blob_id = self._keys.blob_id(data)
            with self._lock:
                if self.has_blob(blob_id):  # never deduplicated against a keyed pack's
                    return blob_id
                self._pending.add(blob_id)
            nonce, sealed = self._sealer().seal_blob(  # sealed: valid until our next seal
                *compression.encode(data, self.config.compression_level),
                packs.blob_aad(kind, blob_id),
            )
            self._append(kind, blob_id, nonce, sealed, len(data))
            return blob_id
        finally:
            if reserved is not None:
                self._inflight.release(reserved)

    def _append(
        self, kind: int, blob_id: bytes, nonce: bytes, sealed: bytes | memoryview, raw_length: int
    ) -> None:
        full: _OpenPack | None = None
        stored = len(nonce) + len(sealed)
        if self._spool_root is not None:
            self._append_spooled(kind, blob_id, nonce, sealed, raw_length)
            return
        with self._pack_lock:
            pack = self._open.get(kind)
            if pack is None:
                pack = self._open[kind] = self._new_pack()
            pack.entries.append(packs.PackEntry(kind, blob_id, pack.size, stored, raw_length))
            pack.add(nonce, sealed)
            self.stats_added_blobs += 1
            self.stats_added_bytes += raw_length
            self.stats_stored_bytes += stored
            if pack.size >= self.config.pack_size:
                full = self._open.pop(kind)
        if full is not None:
            self._submit_upload(full)

    def _append_spooled(
        self, kind: int, blob_id: bytes, nonce: bytes, sealed: bytes | memoryview, raw_length: int
    ) -> None:
        """:meth:`_append` to a local store's packs: the blob thread takes an open pack
        no other thread is writing (a new one when there is none) and appends to it
        outside the lock, so blob threads hash and write their packs at once. With one
        open pack a kind, its SHA-256 and the write into its file ran under the lock:
        the media set's initial backup in one process held it 2.0 s, and its blob
        threads waited 1.3 s for it (load 5). A backup ends with up to one partly filled
        pack a writing thread more; the packs are those of the format, filled as
        before."""
        with self._pack_lock:
            idle = self._idle.setdefault(kind, [])
            pack = idle.pop() if idle else self._new_pack()
        full = False
        stored = len(nonce) + len(sealed)
        try:
            pack.entries.append(packs.PackEntry(kind, blob_id, pack.size, stored, raw_length))
            pack.add(nonce, sealed)
            full = pack.size >= self.config.pack_size
        finally:
            with self._pack_lock:
                self.stats_added_blobs += 1
                self.stats_added_bytes += raw_length
                self.stats_stored_bytes += stored
                if not full:
                    idle.append(pack)  # a pack whose write failed too: its publish refuses
        if full:
            self._submit_upload(pack)

    def _append_run(
        self, kind: int, blobs: list[tuple[bytes, int, int]], sealed: bytearray
    ) -> None:
        """:meth:`_append` of consecutive sealed blobs, ``(id, stored, raw length)`` each,
        joined in ``sealed``: written to the open pack in as few pieces as the pack size
        cuts them into, the pack closed after the blob that fills it, as one by one."""
        full: list[_OpenPack] = []
        limit = self.config.pack_size
        spooled = self._spool_root is not None
        with self._pack_lock, memoryview(sealed) as view:
            idle = self._idle.setdefault(kind, [])
            pack = idle.pop() if spooled and idle else self._open.get(kind)
            start = end = 0  # the run of view not yet written to pack
            try:
                for blob_id, stored, raw_length in blobs:
                    if pack is None:
                        pack = self._new_pack()
                        if not spooled:
                            self._open[kind] = pack
                    offset = pack.size + end - start
                    pack.entries.append(packs.PackEntry(kind, blob_id, offset, stored, raw_length))
                    end += stored
                    self.stats_added_bytes += raw_length
                    if offset + stored >= limit:
                        pack.add_run(view[start:end])
                        start = end
                        full.append(pack)
                        self._open.pop(kind, None)
                        pack = None
                if pack is not None and end > start:
                    pack.add_run(view[start:end])
            finally:
                if spooled and pack is not None:  # a failed write too: its publish refuses
                    idle.append(pack)
            self.stats_added_blobs += len(blobs)
            self.stats_stored_bytes += end
        for done in full:
            self._submit_upload(done)

    def _submit_upload(self, pack: _OpenPack) -> None:
        self._upload_slots.acquire()  # back pressure: at most two packs waiting to upload
        if self._uploader is None:
            with self._lock:
                if self._uploader is None:
                    self._uploader = ThreadPoolExecutor(2, thread_name_prefix="sv-upload")
        future = self._uploader.submit(self._upload, pack)
        with self._lock:
            self._uploads.append(future)

    def _new_pack(self) -> _OpenPack:
        if self._spool_root is None:
            return _OpenPack()
        return _OpenPack(spool=pack_spool.PackSpool.create(self._spool_root))

    def _upload(self, pack: _OpenPack) -> None:
        try:
            header = packs.encode_header(self._sealer(), pack.entries)
            if pack.spool is not None:
                pack_id = pack.spool.publish(header)
            else:
                pack.buf += header
                pack_id = primitives.content_hash(pack.buf).hex()
                _put_idempotent(self.backend, packs.pack_name(pack_id), pack.buf)
                pack.buf = bytearray()
            segment = index.Segment({pack_id: pack.entries}).encode(self._sealer())
            seg_name = f"index/{primitives.content_hash(segment).hex()}"
            _put_idempotent(self.backend, seg_name, segment)
            self._index.add_pack(pack_id, pack.entries)
            if self._pack_keys:
                self._shadow(pack_id, pack.entries)
            with self._lock:
                self._pending.difference_update(e.blob_id for e in pack.entries)
        except BaseException as exc:
            self._upload_error = exc
            raise
        finally:
            if pack.spool is not None:
                pack.spool.discard()  # a no-op once published
            self._upload_slots.release()

    def flush(self) -> None:
        """Upload every open pack, then wait until packs and index segments are durable."""
        self._inflight.wait_idle()
        with self._pack_lock:
            idle = [p for ps in self._idle.values() for p in ps]
            open_packs = [p for p in [*self._open.values(), *idle] if p.entries]
            self._open.clear()
            self._idle.clear()
        for pack in open_packs:
            self._submit_upload(pack)
        with self._lock:
            uploads, self._uploads = self._uploads, []
        for future in uploads:
            future.exception()
        if self._upload_error is not None:
            exc, self._upload_error = self._upload_error, None
            raise exc

    def blob_location(self, blob_id: bytes) -> tuple[str, int, int]:
        loc = self.locate(blob_id)
        return packs.pack_name(loc.pack_id), loc.offset, loc.length

    def locate(self, blob_id: bytes) -> index.Location:
        """Where ``blob_id`` is (pack, kind, offset, length): a blob still pending in an
        open pack is flushed first; IntegrityError when the index does not hold it.
        Readers that fetch packs themselves (a restore's segment reads) start here."""
        loc = self._index.get(blob_id)
        if loc is None and blob_id in self._pending:
            self.flush()
            loc = self._index.get(blob_id)
        if self._shadowed and blob_id in self._shadowed:
            loc = self._shadowed[blob_id]
        if loc is None:
            raise errors.IntegrityError(name=f"blob {blob_id.hex()}", detail="not in the index")
        return loc

    def get_blob(self, blob_id: bytes) -> bytes:
        loc = self.locate(blob_id)
        name = packs.pack_name(loc.pack_id)
        try:
            sealed = self.backend.get(name, loc.offset, loc.length)
        except (errors.ObjectNotFound, errors.ShortRead) as exc:
            raise errors.IntegrityError(name=name, detail=f"blob {blob_id.hex()}: {exc}") from exc
        return self.decode_blob(blob_id, loc.kind, sealed, name)

    def pack_reader(self, max_packs: int = 2) -> PackReader:
        """A blob reader for restore, which visits blobs in pack order: small blobs come
        from whole packs read once and kept (the last ``max_packs``), large ones are read
        directly (one ranged read each is already efficient)."""
        return PackReader(self, max_packs)

    def decode_blob(self, blob_id: bytes, kind: int, sealed: bytes, name: str) -> bytes:
        """Authenticate and decompress one sealed blob read from pack ``name`` (with the
        pack's own key when it is a keyed pack)."""
        sealer = self._sealer_of(name.rsplit("/", 1)[-1])
        try:
            return compression.unpack(sealer.open(sealed, packs.blob_aad(kind, blob_id)))
        except (primitives.AuthenticationFailed, ValueError) as exc:
            raise errors.IntegrityError(
                name=name, detail=f"blob {blob_id.hex()} is damaged ({exc})"
            ) from exc

    def decode_blob_view(
        self, blob_id: bytes, kind: int, sealed: bytes | memoryview, name: str
    ) -> bytes | memoryview:
        """:meth:`decode_blob` for a reader that only writes the plaintext out (a
        restore): a blob stored uncompressed comes back as a view of the opened body
        rather than a copy of it (incompressible data is most of a large restore's
        bytes)."""
        return open_blob_view(self._sealer_of(name.rsplit("/", 1)[-1]), blob_id, kind, sealed, name)

    def verify_blob_id(self, blob_id: bytes, plaintext: bytes, pack_id: str = "") -> bool:
        """Whether ``blob_id`` is the id of ``plaintext``: in the id scope of pack
        ``pack_id`` when that is a keyed pack."""
        key = self._pack_keys.get(pack_id)
        if key is None:
            return self._keys.blob_id(plaintext) == blob_id
        scoped = keyed_packs.scoped_id_key(self._keys.id_key, key.scope)
        return primitives.keyed_hash(scoped, plaintext) == blob_id

    # ----------------------------------------------------------------- keyed packs
    def pack_key(self, pack_id: str) -> keyed_packs.PackKey | None:
        """The key of a keyed pack (repository-format.md, "Keyed packs"); None: enc_key."""
        return self._pack_keys.get(pack_id)

    def pack_keys(self) -> dict[str, keyed_packs.PackKey]:
        """Every keyed pack with its key."""
        return dict(self._pack_keys)

    def writer_secret(self) -> bytes:
        """The repository secret, for a writer process of this same backup (walk workers
        open the repository with it over a private socket pair); never logged or stored."""
        return self._keys.secret

    def scoped_id_key(self, scope: str) -> bytes:
        """The blob-id key of an id scope (an agent's), never the repository's own."""
        return keyed_packs.scoped_id_key(self._keys.id_key, scope)

    def put_pack_keys(self, pack_ids: list[str], key: keyed_packs.PackKey) -> str:
        """Write a record saying ``pack_ids`` are sealed under ``key``; before the packs
        exist (a pack the store holds is always one a reader can open). Its name."""
        return self.put_pack_key_groups([(pack_ids, key)])

    def put_pack_key_groups(self, groups: list[keyed_packs.Group]) -> str:
        """Write one record of several (packs, key) groups; its name."""
        data = keyed_packs.encode_record(self._sealer(), groups)
        name = keyed_packs.record_name(data)
        _put_idempotent(self.backend, name, data)
        self._pack_key_records += 1
        for pack_ids, key in groups:
            for pack_id in pack_ids:
                self._pack_keys.setdefault(pack_id, key)
        return name

    def pack_key_records(self) -> dict[str, list[keyed_packs.Group]]:
        """Every pack-key record's name with its (packs, key) groups (prune, the
        records' merge): listed afresh, read through the cache when there is one."""
        if self._cache is None:
            return keyed_packs.records(self.backend, self._sealer())
        return self._cached_records(self._cache)

    def compact_pack_keys(self, at: int = keyed_packs.COMPACT_RECORDS) -> bool:
        """With ``at`` or more pack-key records, merge them into one (every open reads
        them all): the merged record first, then the old ones go (one under retention
        stays). Readers that meet a deleted one list again. Whether it merged."""
        if self._pack_key_records < at:
            return False
        found = self.pack_key_records()
        if len(found) < at:
            self._pack_key_records = len(found)
            return False
        new = self.put_pack_key_groups(
            keyed_packs.merged(g for groups in found.values() for g in groups)
        )
        for name in found:
            if name != new:
                with contextlib.suppress(errors.ObjectNotFound, errors.ObjectLocked):
                    self.backend.delete(name)
        self._pack_key_records = 1
        return True

    def add_keyed_pack(self, pack_id: str, entries: list[packs.PackEntry]) -> str:
        """Index a keyed pack the store holds (its record written first); the segment."""
        if pack_id not in self._pack_keys:
            raise errors.IntegrityError(name=packs.pack_name(pack_id), detail="has no pack key")
        name = self.write_segment(index.Segment({pack_id: entries}))
        self._index.add_pack(pack_id, entries)
        return name

    def _sealer_of(self, pack_id: str) -> primitives.Sealer:
        key = self._pack_keys.get(pack_id) if self._pack_keys else None
        return self._sealer() if key is None else primitives.Sealer(key.key)

    def _shadow(self, pack_id: str, entries: list[packs.PackEntry]) -> None:
        """This writer stored blobs whose ids a keyed pack already claimed (its first
        location stays in the index): its own copy is the one read."""
        for e in entries:
            loc = self._index.get(e.blob_id)
            if loc is not None and loc.pack_id != pack_id and loc.pack_id in self._pack_keys:
                self._shadowed[e.blob_id] = index.Location(
                    pack_id, e.kind, e.offset, e.length, e.raw_length
                )

    # ----------------------------------------------------------------- index
    @property
    def master_index(self) -> index.MasterIndex:
        return self._index

    def index_segments(self) -> list[str]:
        return [o.name for o in self.backend.list("index/")]

    def read_segment(self, name: str) -> index.Segment:
        try:
            return index.Segment.decode(self._sealer(), self.backend.get(name))
        except index.IndexFormatError as exc:
            raise errors.IntegrityError(name=name, detail=str(exc)) from exc

    def _read_body(self, name: str) -> index.SegmentBody:
        try:
            return index.SegmentBody.open(self._sealer(), self.backend.get(name))
        except index.IndexFormatError as exc:
            raise errors.IntegrityError(name=name, detail=str(exc)) from exc

    def _load_index(self) -> None:
        """Read the pack keys, then every index segment. One listed but gone when read
        was deleted by a concurrent prune, which writes the segment superseding it
        first: list again."""
        if self._cache is not None:
            self._load_cached(self._cache)
            return
        found = keyed_packs.records(self.backend, self._sealer())
        self._pack_keys = keyed_packs.keys_of(found)
        self._pack_key_records = len(found)
        self._shadowed = {}
        for attempt in range(INDEX_LOAD_ATTEMPTS):
            names = self.index_segments()
            if not names:
                return
            try:
                with ThreadPoolExecutor(8) as pool:
                    bodies = dict(zip(names, pool.map(self._read_body, names), strict=True))
            except errors.ObjectNotFound:
                if attempt + 1 == INDEX_LOAD_ATTEMPTS:
                    raise
                continue
            superseded = {f"index/{s}" for body in bodies.values() for s in body.supersedes}
            keyed: list[tuple[str, list[tuple[int, bytes, int, int, int]]]] = []
            for name in names:
                body = bodies.pop(name)  # each segment's bytes go as soon as they are added
                if name in superseded:
                    continue
                if not self._pack_keys:
                    self._index.add_body(body)
                    continue
                for pack_id, rows in body.packs():  # keyed packs last: an id the
                    if pack_id in self._pack_keys:  # repository's writer holds is read
                        keyed.append((pack_id, list(rows)))  # from its own pack
                    else:
                        self._index.add_rows(pack_id, rows)
            for pack_id, listed in keyed:
                self._index.add_rows(pack_id, listed)
            return

    def _load_cached(self, entry: index_cache.Entry) -> None:
        """:meth:`_load_index` through the process's cache: the same listings, and only
        the objects not read before are read (engine/index_cache.py)."""
        self._shadowed = {}
        for attempt in range(INDEX_LOAD_ATTEMPTS):
            record_names = [o.name for o in self.backend.list(keyed_packs.PREFIX)]
            names = self.index_segments()  # after the records: a record precedes its pack
            try:
                found = index_cache.objects(
                    entry, entry.records, record_names, "records", self._read_records
                )
                bodies = index_cache.objects(
                    entry, entry.bodies, names, "bodies", self._read_bodies
                )
            except errors.ObjectNotFound:
                if attempt + 1 == INDEX_LOAD_ATTEMPTS:
                    raise
                continue
            self._pack_keys = keyed_packs.keys_of(found)
            self._pack_key_records = len(found)
            superseded = {f"index/{s}" for body in bodies.values() for s in body.supersedes}
            live = [n for n in names if n not in superseded]
            self._index = index_cache.master_index(entry, live, self._pack_keys, bodies)
            return

    def segment_bodies(self, listing: list[str]) -> dict[str, index.SegmentBody]:
        """The checked, decrypted bodies of the index segments ``listing`` (a whole
        listing of ``index/``: through the cache, when the repository has one, names not
        in it are forgotten); ObjectNotFound when one is gone."""
        if self._cache is None:
            return dict(zip(listing, self._read_bodies(listing), strict=True))
        entry = self._cache
        return index_cache.objects(entry, entry.bodies, listing, "bodies", self._read_bodies)

    def reload_pack_keys(self) -> None:
        """Read the pack-key records again, not the index: for a caller under its lock
        that only names keyed packs (an agent's presign and commit calls)."""
        found = self.pack_key_records()
        self._pack_keys = keyed_packs.keys_of(found)
        self._pack_key_records = len(found)

    def _cached_records(self, entry: index_cache.Entry) -> dict[str, list[keyed_packs.Group]]:
        for attempt in range(INDEX_LOAD_ATTEMPTS):
            names = [o.name for o in self.backend.list(keyed_packs.PREFIX)]
            try:
                return index_cache.objects(
                    entry, entry.records, names, "records", self._read_records
                )
            except errors.ObjectNotFound:  # merged away after the listing: list again
                if attempt + 1 == INDEX_LOAD_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_records(self, names: list[str]) -> list[list[keyed_packs.Group]]:
        def read(name: str) -> list[keyed_packs.Group]:
            data = self.backend.get(name)
            try:
                return keyed_packs.decode_record(self._sealer(), data)
            except ValueError as exc:
                raise errors.IntegrityError(name=name, detail=str(exc)) from exc

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(read, names))

    def _read_bodies(self, names: list[str]) -> list[index.SegmentBody]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(self._read_body, names))

    def reload_index(self) -> None:
        self._index = index.MasterIndex()
        self._load_index()

    def write_segment(self, segment: index.Segment) -> str:
        data = segment.encode(self._sealer())
        name = f"index/{primitives.content_hash(data).hex()}"
        _put_idempotent(self.backend, name, data)
        return name

    def read_pack_header(self, pack_id: str) -> list[packs.PackEntry]:
        name = packs.pack_name(pack_id)
        size = self.backend.stat(name).size
        if size < packs.TAIL_SIZE:
            raise errors.IntegrityError(name=name, detail="too short to be a pack")
        hlen = packs.header_length(self.backend.get(name, size - packs.TAIL_SIZE, packs.TAIL_SIZE))
        if hlen + packs.TAIL_SIZE > size:
            raise errors.IntegrityError(name=name, detail="header length beyond the pack")
        sealed = self.backend.get(name, size - packs.TAIL_SIZE - hlen, hlen)
        try:
            return packs.decode_header(self._sealer_of(pack_id), sealed)
        except packs.PackFormatError as exc:
            raise errors.IntegrityError(name=name, detail=str(exc)) from exc

    def write_pack(
        self, blobs: list[tuple[int, bytes, bytes, int]], key: keyed_packs.PackKey | None = None
    ) -> str:
        """Write one pack of already sealed blobs (kind, id, sealed, raw_length); for prune.
        With ``key``, blobs sealed under that pack key: a keyed pack, its record first."""
        pack = _OpenPack()
        for kind, blob_id, sealed, raw in blobs:
            pack.entries.append(packs.PackEntry(kind, blob_id, pack.size, len(sealed), raw))
            pack.buf += sealed
        sealer = self._sealer() if key is None else primitives.Sealer(key.key)
        pack.buf += packs.encode_header(sealer, pack.entries)
        pack_id = primitives.content_hash(pack.buf).hex()
        if key is not None:
            self.put_pack_keys([pack_id], key)
        _put_idempotent(self.backend, packs.pack_name(pack_id), pack.buf)
        return pack_id

    def list_packs(self) -> Iterator[tuple[str, int]]:
        for info in self.backend.list("data/"):
            yield info.name.rsplit("/", 1)[-1], info.size

    # ----------------------------------------------------------------- manifests
    def save_manifest(self, manifest: dict[str, Any]) -> str:
        """Flush, then write the manifest: the commit point of a recovery point."""
        self.flush()
        rp_id = primitives.random_bytes(32).hex()
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        sealed = self._sealer().seal(compression.pack(body), MANIFEST_AAD + rp_id.encode())
        self.backend.put(MANIFEST_PREFIX + rp_id, sealed)
        return rp_id

    def load_manifest(self, rp_id: str) -> dict[str, Any]:
        name = MANIFEST_PREFIX + rp_id
        try:
            sealed = self.backend.get(name)
        except errors.ObjectNotFound as exc:
            raise errors.RecoveryPointNotFound(id=rp_id) from exc
        try:
            doc = json.loads(
                compression.unpack(self._sealer().open(sealed, MANIFEST_AAD + rp_id.encode()))
            )
        except (primitives.AuthenticationFailed, ValueError) as exc:
            raise errors.IntegrityError(
                name=name, detail="recovery point fails authentication"
            ) from exc
        if not isinstance(doc, dict):
            raise errors.IntegrityError(name=name, detail="not a manifest object")
        return doc

    def list_manifests(self) -> list[str]:
        return sorted(o.name[len(MANIFEST_PREFIX) :] for o in self.backend.list(MANIFEST_PREFIX))

    def delete_manifest(self, rp_id: str, *, bypass_governance: bool = False) -> None:
        """Delete a recovery point's manifest; ``bypass_governance`` lets the store delete
        it under GOVERNANCE retention (never COMPLIANCE)."""
        try:
            self.backend.delete(MANIFEST_PREFIX + rp_id, bypass_governance=bypass_governance)
        except errors.ObjectNotFound as exc:
            raise errors.RecoveryPointNotFound(id=rp_id) from exc

    def manifests(
        self, on_damaged: Callable[[str, errors.IntegrityError], None] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every recovery point with its manifest, oldest first (by its ``time``).

        A damaged manifest raises IntegrityError, unless ``on_damaged`` is given: then it
        is reported to it and left out (listing, picking a parent — never prune, which
        must not forget what a damaged manifest may still need)."""

        def load(rp_id: str) -> dict[str, Any] | None:
            try:
                return self.load_manifest(rp_id)
            except errors.IntegrityError as exc:
                if on_damaged is None:
                    raise
                on_damaged(rp_id, exc)
            except errors.RecoveryPointNotFound:
                if on_damaged is None:
                    raise  # forgotten while we listed
            return None

        ids = self.list_manifests()
        with ThreadPoolExecutor(8) as pool:
            docs = list(pool.map(load, ids))
        pairs = [(i, d) for i, d in zip(ids, docs, strict=True) if d is not None]
        pairs.sort(key=lambda p: (str(p[1].get("time", "")), p[0]))
        return pairs

    def resolve(self, ref: str, where: Callable[[dict[str, Any]], bool] | None = None) -> str:
        """``latest`` (optionally among manifests where ``where`` holds), a full id or a
        unique prefix of one."""
        if ref == "latest":
            pairs = [p for p in self.manifests() if where is None or where(p[1])]
            if not pairs:
                raise errors.RecoveryPointNotFound(id="latest")
            return pairs[-1][0]
        ids = [i for i in self.list_manifests() if i.startswith(ref)] if ref else []
        if len(ids) != 1:
            raise errors.RecoveryPointNotFound(id=ref if not ids else f"{ref} (ambiguous)")
        return ids[0]


class PackReader:
    """Reads blobs through a small cache of whole packs. Thread-safe; a pack being loaded
    by one thread is waited for, not read twice."""

    def __init__(self, repo: Repository, max_packs: int) -> None:
        self._repo = repo
        self._max = max(1, max_packs)
        self._packs: OrderedDict[str, Future[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    DIRECT = 256 * 1024

    def get_blob(self, blob_id: bytes) -> bytes:
        loc = self._repo.locate(blob_id)
        if loc.length >= self.DIRECT:
            return self._repo.get_blob(blob_id)
        name = packs.pack_name(loc.pack_id)
        data = self._pack(name)
        sealed = data[loc.offset : loc.offset + loc.length]
        if len(sealed) != loc.length:
            raise errors.IntegrityError(name=name, detail=f"blob {blob_id.hex()}: pack too short")
        return self._repo.decode_blob(blob_id, loc.kind, sealed, name)

    def _pack(self, name: str) -> bytes:
        with self._lock:
            future = self._packs.get(name)
            if future is not None:
                self._packs.move_to_end(name)
                owner = False
            else:
                future = Future()
                self._packs[name] = future
                owner = True
                while len(self._packs) > self._max:
                    self._packs.popitem(last=False)
        if owner:
            try:
                future.set_result(self._repo.backend.get(name))
            except errors.ObjectNotFound as exc:
                future.set_exception(errors.IntegrityError(name=name, detail=str(exc)))
            except BaseException as exc:
                future.set_exception(exc)
        return future.result()


_RAW_BODY = bytes((compression.RAW,))


def open_blob_view(
    sealer: primitives.Sealer, blob_id: bytes, kind: int, sealed: bytes | memoryview, name: str
) -> bytes | memoryview:
    """:meth:`Repository.decode_blob_view` with the pack's sealer given (a restore
    worker holds the sealer, not a repository)."""
    try:
        body = sealer.open(sealed, packs.blob_aad(kind, blob_id))
        if body[:1] == _RAW_BODY:
            return memoryview(body)[1:]
        return compression.unpack(body)
    except (primitives.AuthenticationFailed, ValueError) as exc:
        raise errors.IntegrityError(
            name=name, detail=f"blob {blob_id.hex()} is damaged ({exc})"
        ) from exc


def spool_root(backend: Backend) -> str | None:
    """Where packs are filled in temporary files (:mod:`.pack_spool`): the root of a
    plain local store, or of a subclass that says its puts of ``data/`` do nothing else
    (``SPOOL_PACKS``); None for any other store (packs fill in memory)."""
    if type(backend) is LocalBackend or getattr(type(backend), "SPOOL_PACKS", False):
        root = getattr(backend, "root", None)
        return root if isinstance(root, str) else None
    return None


def _new_slot_id() -> str:
    return primitives.random_bytes(16).hex()


def _open_any_slot(
    slots: list[tuple[str, bytes]],
    repo_id: str,
    password: str | None,
    raw_key: bytes | None,
    wrapper: KeyWrapper | None,
    derived: keyslots.Derivation | None = None,
) -> bytes:
    """The secret from the first slot that opens. A slot that cannot even be tried (bad
    JSON, base64 or KDF parameters) is damaged: when no other slot opens, that is what
    the error names, not a wrong passphrase."""
    if not slots:
        raise errors.IntegrityError(name="keys/", detail="the repository has no key slot")
    damaged = []
    for name, data in slots:
        try:
            slot = keyslots.KeySlot.from_bytes(data)
            secret = keyslots.open_slot(
                slot,
                repo_id,
                passphrase=password,
                raw_key=raw_key,
                wrapper=wrapper,
                derived=derived,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            damaged.append(name)
            continue
        if secret is not None:
            return secret
    if damaged:
        raise errors.IntegrityError(
            name=", ".join(damaged),
            detail="key slot is damaged, and no other key slot opens with the given key",
        )
    raise errors.WrongKey()


def _put_idempotent(backend: Backend, name: str, data: bytes | bytearray) -> None:
    """Content-addressed names: an existing object of that name already holds these bytes."""
    with contextlib.suppress(errors.ObjectExists):
        backend.put(name, data)
