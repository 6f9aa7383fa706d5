"""The words every stage shares: which wire protocol, which operation.

Kept apart from the modules that act on them so that any module can name them without
importing behaviour (errors, adapters and the request path all use both).
"""

from __future__ import annotations

from enum import StrEnum


class Protocol(StrEnum):
    """A wire protocol: the one a client speaks (its routes, shapes and errors), or the one a
    provider type speaks (see gateway.protocols)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    BEDROCK = "bedrock"
    """A provider protocol only (Amazon Bedrock's Converse): no client speaks it."""


class Op(StrEnum):
    """What the client asked for, independent of protocol."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    COUNT_TOKENS = "count_tokens"
    MODERATIONS = "moderations"
    IMAGES = "images"
    """/v1/images/generations."""
    IMAGE_EDITS = "image_edits"
    """/v1/images/edits (multipart)."""
    AUDIO_SPEECH = "audio_speech"
    AUDIO_TRANSCRIPTIONS = "audio_transcriptions"
    AUDIO_TRANSLATIONS = "audio_translations"
    RERANK = "rerank"
    """Cohere/Jina-style rerank, as OpenAI-compatible servers (vLLM, TEI, Jina) serve it."""
