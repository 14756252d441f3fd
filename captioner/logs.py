"""Logging set-up with secret redaction on every record.

Keys are never passed to the logger on purpose; this filter is the second
line of defence, for URLs and exception texts that might carry one.
"""

from __future__ import annotations

import logging

from captioner.stt.urls import proxy_secrets, redact_text, remember_secret


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = redact_text(message, self.secrets)
        record.args = None
        return True


_filter = RedactingFilter()


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_filter)
    for secret in proxy_secrets():
        add_secret(secret)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.INFO if verbose else logging.WARNING)
    # qasync logs every worker-thread call's arguments and result at DEBUG:
    # a key being stored, a login's token. Never below INFO.
    logging.getLogger("qasync").setLevel(logging.INFO if verbose else logging.WARNING)


def add_secret(secret: str | None) -> None:
    """Make every log line (and every message redacted with `redact_text`)
    leave out `secret` from now on."""
    remember_secret(secret)
    if secret and secret not in _filter.secrets:
        _filter.secrets = _filter.secrets + (secret,)
