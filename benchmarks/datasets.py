"""Deterministic benchmark datasets for the engine benchmark (benchmarks/engine_bench.py).

A dataset has three parts, each built once under a work directory and reused while its
spec is unchanged (a stamp file records the spec it was built from):

1. ``sources/<package>-<version>/``: unpacked sdists of successive releases of one real
   package, fetched from PyPI with ``pip download`` (cached in ``<workdir>/downloads``).
2. ``image/disk.img``: a disk-image-like file of mixed content (seeded random runs, zero
   runs, text-like and record-like compressible runs) and ``image/disk-changed.img``, a
   copy with 1% of its 64 KiB blocks rewritten.
3. ``small/``: many small files (0-16 KiB, nested directories, some duplicates).

It also lays out and mutates the *live* tree the tools back up, and hashes trees so a
restore can be checked byte for byte.

Depends only on the Python standard library (and pip, run as a subprocess); it must not
import snowvault, so it can measure any engine, including a broken one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

BLOCK = 64 * 1024
MARKER = ".bench-root"
MARKER_TEXT = b"snowvault engine benchmark live tree\n"
STAMP = ".dataset-spec.json"

Log = Callable[[str], None]


@dataclass(frozen=True)
class DatasetSpec:
    """What to build; every byte of the dataset follows from these fields."""

    name: str
    package: str
    versions: tuple[str, ...]
    code_only: bool  # keep only the package's own code (minus translations) from the sdist
    image_bytes: int
    changed_block_fraction: float
    small_files: int
    small_max_bytes: int
    seed: int


FULL = DatasetSpec(
    name="full",
    package="Django",
    versions=("5.0.3", "5.0.4", "5.0.6", "5.0.7", "5.0.8"),  # 5.0.5 was yanked (CRLF files)
    code_only=False,
    image_bytes=1024 * 1024 * 1024,
    changed_block_fraction=0.01,
    small_files=100_000,
    small_max_bytes=16 * 1024,
    seed=20240601,
)

QUICK = DatasetSpec(
    name="quick",
    package="Django",
    versions=("5.0.6", "5.0.7", "5.0.8"),
    code_only=True,
    image_bytes=128 * 1024 * 1024,
    changed_block_fraction=0.01,
    small_files=10_000,
    small_max_bytes=16 * 1024,
    seed=20240601,
)


@dataclass(frozen=True)
class Dataset:
    """A built dataset on disk."""

    spec: DatasetSpec
    root: Path
    source_dirs: tuple[Path, ...]  # one per version, oldest first
    image: Path
    image_changed: Path
    small_dir: Path


@dataclass(frozen=True)
class FileEntry:
    """One tree entry: kind is 'dir', 'file' or 'link'; digest is sha1 (or link target)."""

    kind: str
    size: int
    digest: str


Manifest = dict[str, FileEntry]


# --------------------------------------------------------------------------- building


def build_dataset(spec: DatasetSpec, workdir: Path, log: Log) -> Dataset:
    """Build (or reuse) the dataset for ``spec`` under ``workdir``."""
    root = workdir / f"dataset-{spec.name}"
    dataset = _layout(spec, root)
    stamp = root / STAMP
    wanted = json.dumps(asdict(spec), sort_keys=True)
    if stamp.exists() and stamp.read_text() == wanted:
        log(f"dataset {spec.name}: reusing {root}")
        return dataset
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    downloads = workdir / "downloads"
    for version, target in zip(spec.versions, dataset.source_dirs):
        log(f"dataset {spec.name}: unpacking {spec.package} {version}")
        archive = _download_sdist(spec.package, version, downloads)
        _unpack_sdist(archive, target, spec.code_only)
    log(f"dataset {spec.name}: writing {spec.image_bytes >> 20} MiB image and changed copy")
    write_image(dataset.image, spec.image_bytes, spec.seed)
    write_changed_copy(dataset.image, dataset.image_changed, spec)
    log(f"dataset {spec.name}: writing {spec.small_files} small files")
    write_small_files(dataset.small_dir, spec)
    stamp.write_text(wanted)
    return dataset


def _layout(spec: DatasetSpec, root: Path) -> Dataset:
    sources = tuple(root / "sources" / f"{spec.package.lower()}-{v}" for v in spec.versions)
    return Dataset(
        spec=spec,
        root=root,
        source_dirs=sources,
        image=root / "image" / "disk.img",
        image_changed=root / "image" / "disk-changed.img",
        small_dir=root / "small",
    )


def _download_sdist(package: str, version: str, downloads: Path) -> Path:
    found = _find_archive(package, version, downloads)
    if found is not None:
        return found
    downloads.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    argv += ["--no-binary", ":all:", "-d", str(downloads), f"{package}=={version}"]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    found = _find_archive(package, version, downloads)
    if found is None:
        raise FileNotFoundError(f"pip downloaded no sdist for {package}=={version}")
    return found


def _find_archive(package: str, version: str, downloads: Path) -> Path | None:
    if not downloads.is_dir():
        return None
    prefix = f"{package.lower()}-{version}.tar.gz"
    for entry in sorted(downloads.iterdir()):
        if entry.name.lower() == prefix:
            return entry
    return None


def _unpack_sdist(archive: Path, target: Path, code_only: bool) -> None:
    """Unpack without the archive's top folder; with code_only keep <pkg>/ minus locale/."""
    target.mkdir(parents=True)

    def keep(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        parts = member.name.split("/")[1:]
        if not parts or not parts[0]:
            return None
        if code_only and (parts[0] != "django" or "locale" in parts):
            return None
        return tarfile.data_filter(member.replace(name="/".join(parts)), dest)

    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter=keep)


# --------------------------------------------------------------------------- content


def _weighted_table(weights: dict[bytes, int]) -> bytes:
    table = b"".join(char * count for char, count in weights.items())
    if len(table) != 256:
        raise ValueError(f"translation table has {len(table)} entries, need 256")
    return table


# English-like letter frequencies: about 4 bits of entropy per byte.
TEXT_TABLE = _weighted_table(
    {
        b" ": 36, b"e": 26, b"t": 19, b"a": 17, b"o": 16, b"i": 15, b"n": 14, b"s": 13,
        b"h": 12, b"r": 12, b"d": 9, b"l": 8, b"u": 6, b"c": 6, b"m": 5, b"f": 5, b"w": 4,
        b"y": 4, b"p": 4, b"g": 4, b"b": 3, b"v": 2, b"k": 2, b"\n": 4, b",": 2, b".": 2,
        b"0": 1, b"1": 1, b"2": 1, b"3": 1, b"T": 1, b"S": 1,
    }
)  # fmt: skip
# Mostly zero bytes with a sprinkle of noise (XORed over a record template).
SPARSE_TABLE = bytes(224) + bytes(range(1, 33))
RECORD = b"2024-06-01T00:00:00Z host=db01 level=INFO op=write table=orders rows=0000\n"


def text_bytes(rng: random.Random, size: int) -> bytes:
    """Unique, compressible, text-like bytes."""
    return rng.randbytes(size).translate(TEXT_TABLE)


def record_bytes(rng: random.Random, size: int) -> bytes:
    """A repeated log-record template with sparse seeded noise: highly compressible."""
    template = (RECORD * (size // len(RECORD) + 1))[:size]
    noise = rng.randbytes(size).translate(SPARSE_TABLE)
    mixed = int.from_bytes(template, "little") ^ int.from_bytes(noise, "little")
    return mixed.to_bytes(size, "little")


def mixed_run(rng: random.Random, size: int) -> bytes:
    """One run of image content; the kind is drawn with fixed weights."""
    kind = rng.choices(("random", "zero", "text", "records"), weights=(30, 15, 30, 25))[0]
    if kind == "random":
        return rng.randbytes(size)
    if kind == "zero":
        return bytes(size)
    if kind == "text":
        return text_bytes(rng, size)
    return record_bytes(rng, size)


def write_image(path: Path, size: int, seed: int) -> None:
    """Write ``size`` bytes of mixed content in runs of 1-64 blocks."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("wb") as out:
        while written < size:
            run = min(rng.randint(1, 64) * BLOCK, size - written)
            out.write(mixed_run(rng, run))
            written += run


def changed_blocks(spec: DatasetSpec) -> list[int]:
    """Indexes of the 64 KiB blocks that differ between the image and its changed copy."""
    blocks = spec.image_bytes // BLOCK
    count = max(1, round(blocks * spec.changed_block_fraction))
    return sorted(random.Random(spec.seed + 1).sample(range(blocks), count))


def write_changed_copy(source: Path, target: Path, spec: DatasetSpec) -> None:
    """Copy ``source`` with the blocks from :func:`changed_blocks` rewritten."""
    rng = random.Random(spec.seed + 2)
    changed = set(changed_blocks(spec))
    with source.open("rb") as src, target.open("wb") as out:
        index = 0
        while block := src.read(BLOCK):
            if index in changed:
                block = mixed_run(rng, len(block))
            out.write(block)
            index += 1


def small_file_path(root: Path, index: int, ext: str) -> Path:
    """25 top folders x 20 sub folders x 200 files for the full set."""
    return root / f"d{index // 4000:02d}" / f"s{(index // 200) % 20:02d}" / f"f{index:06d}{ext}"


def small_file_size(rng: random.Random, max_bytes: int) -> int:
    if rng.random() < 0.02:
        return 0
    return min(max_bytes, 1 + int(max_bytes * rng.random() ** 2))


def small_file_content(rng: random.Random, size: int, recent: list[bytes]) -> tuple[bytes, str]:
    """Content and extension: mostly text, some random, some duplicates of recent files."""
    roll = rng.random()
    if roll < 0.05 and recent:
        return rng.choice(recent), ".dup"
    if roll < 0.35:
        return rng.randbytes(size), ".bin"
    return text_bytes(rng, size), ".txt"


def write_small_files(root: Path, spec: DatasetSpec) -> None:
    rng = random.Random(spec.seed + 3)
    recent: list[bytes] = []
    for index in range(spec.small_files):
        size = small_file_size(rng, spec.small_max_bytes)
        data, ext = small_file_content(rng, size, recent)
        path = small_file_path(root, index, ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        recent.append(data)
        if len(recent) > 256:
            recent.pop(0)


# --------------------------------------------------------------------------- live tree


@dataclass(frozen=True)
class ChangeSummary:
    """What :func:`apply_incremental_change` did to the live tree."""

    added_version: str
    image_blocks_changed: int
    small_touched: int
    small_rewritten: int


def prepare_live_tree(dataset: Dataset, live: Path) -> None:
    """Lay out the initial state: versions 1..N-1, the original image, the small files."""
    if live.exists():
        shutil.rmtree(live)
    (live / "src").mkdir(parents=True)
    (live / MARKER).write_bytes(MARKER_TEXT)
    for source in dataset.source_dirs[:-1]:
        _copy_tree(source, live / "src" / source.name)
    _copy_tree(dataset.image, live / "disk.img")
    _copy_tree(dataset.small_dir, live / "small")


def apply_incremental_change(dataset: Dataset, live: Path) -> ChangeSummary:
    """Add the last version, swap in the changed image, touch/rewrite 1% of small files."""
    spec = dataset.spec
    last = dataset.source_dirs[-1]
    _copy_tree(last, live / "src" / last.name)
    staged = live / "disk.img.new"
    shutil.copyfile(dataset.image_changed, staged)
    os.replace(staged, live / "disk.img")
    files = sorted(p for p in (live / "small").rglob("*") if p.is_file())
    rng = random.Random(spec.seed + 4)
    picked = rng.sample(files, max(2, len(files) // 100))
    half = len(picked) // 2
    for path in picked[:half]:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 3_600_000_000_000))
    for path in picked[half:]:
        path.write_bytes(text_bytes(rng, small_file_size(rng, spec.small_max_bytes)))
    return ChangeSummary(
        added_version=spec.versions[-1],
        image_blocks_changed=len(changed_blocks(spec)),
        small_touched=half,
        small_rewritten=len(picked) - half,
    )


def _copy_tree(source: Path, target: Path) -> None:
    """``cp -a`` keeps mtimes, so every run starts from the same metadata."""
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


# --------------------------------------------------------------------------- verification


def walk(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry below ``root`` with its path relative to ``root``, sorted per folder."""
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = f"{prefix}{entry.name}"
                yield rel, entry
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel + "/"))


def _file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()


def manifest(root: Path) -> Manifest:
    """Hash every file below ``root`` (two threads; hashlib releases the GIL)."""
    result: Manifest = {}
    files: list[tuple[str, str, int]] = []
    for rel, entry in walk(root):
        if entry.is_symlink():
            target = os.readlink(entry.path)
            result[rel] = FileEntry("link", len(target), target)
        elif entry.is_dir(follow_symlinks=False):
            result[rel] = FileEntry("dir", 0, "")
        else:
            files.append((rel, entry.path, entry.stat(follow_symlinks=False).st_size))
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = pool.map(_file_digest, [path for _, path, _ in files], chunksize=64)
        for (rel, _, size), digest in zip(files, digests):
            result[rel] = FileEntry("file", size, digest)
    return result


def total_bytes(entries: Manifest) -> int:
    return sum(entry.size for entry in entries.values() if entry.kind == "file")


def tree_bytes(root: Path) -> int:
    """Apparent size of every regular file below ``root`` (or of ``root`` itself)."""
    if root.is_file():
        return root.stat().st_size
    return sum(
        e.stat(follow_symlinks=False).st_size
        for _, e in walk(root)
        if e.is_file(follow_symlinks=False)
    )


def find_restored_root(target: Path, max_depth: int = 12) -> Path | None:
    """The folder holding the live tree's marker file (tools nest restores differently)."""
    level = [target]
    for _ in range(max_depth):
        following: list[Path] = []
        for folder in level:
            if (folder / MARKER).is_file():
                return folder
            with os.scandir(folder) as entries:
                following += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        level = following
        if not level:
            break
    return None


def compare(expected: Manifest, actual: Manifest, limit: int = 5) -> list[str]:
    """Human-readable differences, at most ``limit`` of them (empty: identical)."""
    problems: list[str] = []
    for rel in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(rel), actual.get(rel)
        if want == got:
            continue
        if got is None:
            problems.append(f"missing {rel}")
        elif want is None:
            problems.append(f"unexpected {rel}")
        else:
            problems.append(f"differs {rel} ({want.kind}/{want.size} vs {got.kind}/{got.size})")
        if len(problems) >= limit:
            break
    return problems


# --------------------------------------------------------------------------- second set: media


@dataclass(frozen=True)
class MediaSpec:
    """A different mix from the source set (issue 15 asks for two): few large files, most
    of them incompressible (photos, video), a few large compressible logs that grow, a
    sparse disk image, and medium-sized documents; no crowd of tiny files."""

    name: str
    media_files: int  # random bytes, 1-8 MiB each
    log_files: int  # record-like text, 2-12 MiB each, appended to by the change
    documents: int  # text-like, 8-128 KiB each
    sparse_bytes: int  # apparent size of the sparse image; one eighth of it is data
    seed: int


MEDIA = MediaSpec(
    name="media",
    media_files=100,
    log_files=24,
    documents=2_000,
    sparse_bytes=512 * 1024 * 1024,
    seed=20261207,
)


@dataclass(frozen=True)
class MediaChange:
    media_added: int
    media_removed: int
    logs_appended: int
    documents_rewritten: int
    sparse_blocks_changed: int


def build_media(spec: MediaSpec, workdir: Path, log: Log) -> Path:
    """Build (or reuse) the media set's pristine tree; returns its root."""
    root = workdir / f"dataset-{spec.name}"
    stamp = root / STAMP
    wanted = json.dumps(asdict(spec), sort_keys=True)
    if stamp.exists() and stamp.read_text() == wanted:
        log(f"dataset {spec.name}: reusing {root}")
        return root
    if root.exists():
        shutil.rmtree(root)
    tree = root / "tree"
    rng = random.Random(spec.seed)
    log(f"dataset {spec.name}: writing {spec.media_files} media files")
    for i in range(spec.media_files):
        path = tree / "media" / f"album{i // 20:02d}" / f"img{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1, 8) * 1024 * 1024 - rng.randint(0, 4095)))
    log(f"dataset {spec.name}: writing {spec.log_files} logs and {spec.documents} documents")
    for i in range(spec.log_files):
        path = tree / "logs" / f"service{i:02d}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record_bytes(rng, rng.randint(2, 12) * 1024 * 1024))
    for i in range(spec.documents):
        path = tree / "docs" / f"d{i // 200:02d}" / f"doc{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text_bytes(rng, rng.randint(8, 128) * 1024))
    log(f"dataset {spec.name}: writing a {spec.sparse_bytes >> 20} MiB sparse image")
    image = tree / "vm" / "disk.raw"
    image.parent.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as out:
        out.truncate(spec.sparse_bytes)
        for block in _sparse_blocks(spec):
            out.seek(block * BLOCK)
            out.write(mixed_run(rng, BLOCK))
    stamp.write_text(wanted)
    return root


def _sparse_blocks(spec: MediaSpec) -> list[int]:
    blocks = spec.sparse_bytes // BLOCK
    return sorted(random.Random(spec.seed + 1).sample(range(blocks), blocks // 8))


def prepare_media_live(root: Path, live: Path) -> None:
    if live.exists():
        shutil.rmtree(live)
    live.mkdir(parents=True)
    (live / MARKER).write_bytes(MARKER_TEXT)
    for part in sorted((root / "tree").iterdir()):
        _copy_tree(part, live / part.name)  # cp -a keeps holes sparse (--sparse=auto)


def apply_media_change(spec: MediaSpec, live: Path) -> MediaChange:
    """New photos, two deleted, every log appended to (5%), 2% of the documents
    rewritten, 1% of the image's data blocks rewritten in place."""
    rng = random.Random(spec.seed + 2)
    added = max(1, spec.media_files // 10)
    for i in range(added):
        path = live / "media" / "new" / f"img{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1, 8) * 1024 * 1024))
    media = sorted((live / "media").rglob("img*.jpg"))
    removed = rng.sample(media, 2)
    for path in removed:
        path.unlink()
    logs = sorted((live / "logs").iterdir())
    for path in logs:
        with path.open("ab") as out:
            out.write(record_bytes(rng, path.stat().st_size // 20))
    docs = sorted((live / "docs").rglob("*.txt"))
    rewritten = rng.sample(docs, max(1, len(docs) // 50))
    for path in rewritten:
        path.write_bytes(text_bytes(rng, rng.randint(8, 128) * 1024))
    data_blocks = _sparse_blocks(spec)
    changed = rng.sample(data_blocks, max(1, len(data_blocks) // 100))
    with (live / "vm" / "disk.raw").open("r+b") as out:
        for block in changed:
            out.seek(block * BLOCK)
            out.write(mixed_run(rng, BLOCK))
    return MediaChange(added, len(removed), len(logs), len(rewritten), len(changed))
