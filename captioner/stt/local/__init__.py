"""The built-in offline engine: captions with no key and no network.

PocketSphinx (its wheel ships a US-English model) is the embedded default;
Vosk is a better tier whose model is downloaded once, verified and then used
offline. `LocalSession` gives them the same surface and events as the cloud
providers' `StreamSession`.
"""
