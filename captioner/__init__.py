"""Captioner: live captions from audio through a cloud speech-to-text provider."""

__version__ = "0.1.0"
