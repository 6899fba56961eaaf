"""Image files on disk: checked by content, stripped of metadata, stored under random names.

Pillow decides what a file is (never its name or the client's content type), refuses
decompression bombs, and re-encodes the pixels so EXIF, GPS and other metadata never
reach the disk. All of that is CPU work, so it runs on the store's own worker threads
(`threads` of them): never queued behind other kinds of work such as password hashing.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import secrets
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image, ImageOps, UnidentifiedImageError

from gql_feed.runtime.workers import WorkerPool

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024

# Pillow format name -> (file extension, content type). Only these are accepted.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {ext: content_type for ext, content_type in FORMATS.values()}
OPEN_FORMATS = tuple(FORMATS)  # a JPEG with extra pictures opens as "MPO"
NOT_AN_IMAGE = "The file is not a JPEG, PNG, GIF or WebP image."
NAME_BYTES = 18  # random bytes in a stored name: 24 URL-safe characters
# Exactly the names `_store` and `_write` make; nothing else in the directory is ours.
STORED_NAME = re.compile(r"[A-Za-z0-9_-]{24}\.(?:jpg|png|gif|webp)")
PARTIAL_NAME = re.compile(r"\.([A-Za-z0-9_-]{24}\.(?:jpg|png|gif|webp))\.part")


@runtime_checkable
class Readable(Protocol):
    """What an upload must offer: strawberry hands us Starlette's UploadFile."""

    async def read(self, size: int = -1) -> bytes: ...


class ImageRejected(ValueError):
    """The upload is not an image we accept; the message is safe to show the client."""


@dataclass(frozen=True)
class ImageStore:
    directory: Path
    max_bytes: int
    max_pixels: int
    threads: int = 2
    # No bound on waiting jobs: each holds one upload already read, and request bodies
    # and connections are bounded before a job is made.
    pool: WorkerPool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", WorkerPool("gql_feed-images", self.threads))

    def ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.pool.close()

    async def save(self, upload: Readable) -> str:
        """Read at most `max_bytes`, check and clean the image, and return its stored name.

        The name is random: nothing the client sent (file name, content type) is used.
        """
        if not isinstance(upload, Readable):
            # The Upload scalar takes any JSON value in place of a file part.
            raise ImageRejected("Send the image as a file part of a multipart request.")
        data = await self._read_bounded(upload)
        storing = asyncio.ensure_future(self.pool.run(self._store, data))
        try:
            return await asyncio.shield(storing)
        except asyncio.CancelledError:
            # A worker thread cannot be stopped: it may still write the file. Whoever
            # cancelled us will never learn its name, so remove it once it is there.
            storing.add_done_callback(self._discard_stored)
            raise

    def path_of(self, name: str) -> Path | None:
        """The file for a stored name, or None when the name is not one we could have made."""
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        extension = name.rpartition(".")[2]
        if extension not in CONTENT_TYPES:
            return None
        return self.directory / name

    async def delete(self, name: str) -> None:
        path = self.path_of(name)
        if path is not None:
            await self.pool.run(path.unlink, True)

    def files_older_than(self, seconds: float) -> tuple[set[str], set[str]]:
        """Stored images and half-written `.part` files last written over `seconds` ago,
        by name: (images, partials). Only names this store makes are listed. Blocking:
        run it on a worker thread."""
        cutoff = time.time() - seconds
        images: set[str] = set()
        partials: set[str] = set()
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if STORED_NAME.fullmatch(entry.name):
                    found = images
                elif PARTIAL_NAME.fullmatch(entry.name):
                    found = partials
                else:
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        found.add(entry.name)
                except FileNotFoundError:
                    continue  # removed meanwhile, by another process's sweep
        return images, partials

    def remove_files(self, names: set[str]) -> int:
        """Remove files of this store's naming; how many went. One that cannot be removed
        (permissions) is logged and left: it must not stop the server from starting.
        Blocking: run it on a worker thread."""
        removed = 0
        for name in names:
            if not (STORED_NAME.fullmatch(name) or PARTIAL_NAME.fullmatch(name)):
                continue
            try:
                (self.directory / name).unlink(missing_ok=True)
                removed += 1
            except OSError as error:
                logger.warning("Could not remove %s: %s", name, error)
        return removed

    async def _read_bounded(self, upload: Readable) -> bytes:
        buffer = bytearray()
        while chunk := await upload.read(CHUNK_BYTES):
            buffer += chunk
            if len(buffer) > self.max_bytes:
                raise ImageRejected(f"The image is larger than {self.max_bytes} bytes.")
        if not buffer:
            raise ImageRejected("The image is empty.")
        return bytes(buffer)

    def _discard_stored(self, storing: asyncio.Future[str]) -> None:
        if storing.cancelled() or storing.exception() is not None:
            return
        path = self.path_of(storing.result())
        if path is not None:
            path.unlink(missing_ok=True)  # rare (a cancelled upload), and one quick call

    def _store(self, data: bytes) -> str:
        """Clean and write in one worker-thread call: each hop to a thread and back adds
        latency before the post's transaction can start."""
        cleaned, extension = self._clean(data)
        name = f"{secrets.token_urlsafe(NAME_BYTES)}.{extension}"
        self._write(name, cleaned)
        return name

    def _clean(self, data: bytes) -> tuple[bytes, str]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                # Only our formats' parsers ever see the bytes: Pillow would otherwise try
                # every plugin it has (TIFF, EPS, ...), a far larger attack surface.
                with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as probe:
                    # Phones write JPEGs with extra pictures (MPO); the first is the photo.
                    image_format = "JPEG" if probe.format == "MPO" else probe.format or ""
                    if image_format not in FORMATS:
                        raise ImageRejected(NOT_AN_IMAGE)
                    width, height = probe.size
                    if width * height > self.max_pixels:
                        raise ImageRejected("The image has too many pixels.")
                    # A GIF keeps every frame (see _reencode), each a full canvas in memory.
                    frames = getattr(probe, "n_frames", 1) if image_format == "GIF" else 1
                    if width * height * frames > self.max_pixels:
                        raise ImageRejected("The animation has too many frames for its size.")
                    probe.verify()
                with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as image:
                    return _reencode(image, image_format), FORMATS[image_format][0]
        except ImageRejected:
            raise
        except UnidentifiedImageError:
            raise ImageRejected(NOT_AN_IMAGE) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected("The image has too many pixels.") from None
        except Exception:
            # Decoders fed hostile bytes fail in many ways (OSError, SyntaxError,
            # struct.error, EOFError, ...): each is a broken upload, not a server fault.
            raise ImageRejected("The image is damaged.") from None

    def _write(self, name: str, data: bytes) -> None:
        """Written under a hidden name, then renamed: a reader never sees half a file, and a
        failed write (disk full) leaves nothing that `path_of` would serve."""
        partial = self.directory / f".{name}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(partial, self.directory / name)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def _reencode(image: Image.Image, image_format: str) -> bytes:
    """Pixels only: orientation applied, every metadata chunk (EXIF, GPS, XMP, ICC text) dropped."""
    out = io.BytesIO()
    if image_format == "GIF":
        frames = getattr(image, "n_frames", 1)
        image.info.pop("comment", None)
        image.save(out, format="GIF", save_all=frames > 1, optimize=False)
        return out.getvalue()
    image = ImageOps.exif_transpose(image)
    if image_format == "JPEG":
        image.convert("RGB").save(out, format="JPEG", quality=90)
    elif image_format == "PNG":
        image.save(out, format="PNG", icc_profile=None)  # PNG alone would copy it over
    else:
        image.save(out, format="WEBP", quality=90)
    return out.getvalue()
