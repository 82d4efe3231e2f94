"""An image ready for the model (pure value; bot.images.processing makes them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImagePart:
    """An image already validated and scaled, ready to send as a data URL."""

    media_type: str  # image/jpeg, image/png, image/gif or image/webp
    data: bytes
    width: int
    height: int
