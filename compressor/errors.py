"""Typed errors of the engine. Messages are written for the person who submitted the model."""


class CompressionError(Exception):
    """Base class: the engine could not do what was asked."""


class InvalidRecipeError(CompressionError):
    """The recipe is inconsistent in itself or with the target (known before running)."""


class UnsupportedModelError(CompressionError):
    """The model cannot be handled by a technique; names the layer and the reason when known."""

    def __init__(self, reason: str, *, layer: str | None = None) -> None:
        self.layer = layer
        self.reason = reason
        super().__init__(f"layer {layer!r}: {reason}" if layer else reason)


class InvalidModelError(CompressionError):
    """The uploaded file is not a model we can read (corrupt, wrong format, missing parts)."""


class UnsafeArchiveError(InvalidModelError):
    """An archive member would escape its folder, is a link, or breaks a size limit."""
