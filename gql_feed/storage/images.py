"""Image files on disk: checked by content, stripped of metadata, stored under random names.

Pillow decides what a file is (never its name or the client's content type), refuses
decompression bombs, and re-encodes the pixels so EXIF, GPS and other metadata never
reach the disk. All of that is CPU work, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

CHUNK_BYTES = 64 * 1024

# Pillow format name -> (file extension, content type). Only these are accepted.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {ext: content_type for ext, content_type in FORMATS.values()}


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

    def ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    async def save(self, upload: Readable) -> str:
        """Read at most `max_bytes`, check and clean the image, and return its stored name."""
        data = await self._read_bounded(upload)
        cleaned, extension = await asyncio.to_thread(self._clean, data)
        name = f"{secrets.token_urlsafe(18)}.{extension}"
        await asyncio.to_thread(self._write, name, cleaned)
        return name

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
            await asyncio.to_thread(path.unlink, True)

    async def _read_bounded(self, upload: Readable) -> bytes:
        buffer = bytearray()
        while chunk := await upload.read(CHUNK_BYTES):
            buffer += chunk
            if len(buffer) > self.max_bytes:
                raise ImageRejected(f"The image is larger than {self.max_bytes} bytes.")
        if not buffer:
            raise ImageRejected("The image is empty.")
        return bytes(buffer)

    def _clean(self, data: bytes) -> tuple[bytes, str]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as probe:
                    image_format = probe.format or ""
                    if image_format not in FORMATS:
                        raise ImageRejected("Only JPEG, PNG, GIF and WebP images are accepted.")
                    width, height = probe.size
                    if width * height > self.max_pixels:
                        raise ImageRejected("The image has too many pixels.")
                    probe.verify()
                with Image.open(io.BytesIO(data)) as image:
                    return _reencode(image, image_format), FORMATS[image_format][0]
        except (UnidentifiedImageError, Image.DecompressionBombError):
            raise ImageRejected("The file is not an image we can read.") from None
        except Image.DecompressionBombWarning:
            raise ImageRejected("The image has too many pixels.") from None
        except (OSError, SyntaxError, ValueError) as error:
            if isinstance(error, ImageRejected):
                raise
            raise ImageRejected("The image is damaged.") from None

    def _write(self, name: str, data: bytes) -> None:
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(data)


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
        image.save(out, format="PNG")
    else:
        image.save(out, format="WEBP", quality=90)
    return out.getvalue()
