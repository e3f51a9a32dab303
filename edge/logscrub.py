"""Keep camera credentials out of every log line.

Camera URLs carry passwords (``rtsp://admin:secret@10.0.0.7/stream1``) and some
vendors put them in the query (``?user=admin&password=secret``). Code in this
repository logs URLs through `redact_url`, but FFmpeg errors, exceptions and
third-party libraries repeat the URL verbatim, so the node also installs
`CredentialScrubber` on its log handlers: every record is scrubbed after
formatting, arguments and traceback included.

    from edge.logscrub import install
    install()                      # on the root logger's handlers

A filter on a *logger* only sees records logged on that very logger, not the
ones that propagate from children; that is why `install` attaches the filter to
handlers.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# scheme://userinfo@host -> scheme://***@host. Userinfo is anything up to the
# last "@" before the first "/", so passwords containing "@" or ":" are covered.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]*(?:@[^/\s@]*)*)@")
_SECRET_PARAMS = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "access_token",
    "secret",
    "apikey",
    "api_key",
    "user",
    "username",
)
# name=value in a query string or a "key=value" log fragment; value ends at &, ;, whitespace or quote.
_QUERY_SECRET = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_])(?:" + "|".join(_SECRET_PARAMS) + r"))=(?P<value>[^&;\s'\"]+)",
    re.IGNORECASE,
)


def redact_url(text: str) -> str:
    """Mask userinfo and secret query parameters in every URL inside `text`."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('name')}={MASK}", text)


class CredentialScrubber(logging.Filter):
    """A logging filter that rewrites each record so that no credential survives.

    The message is formatted once (``msg % args``), scrubbed and stored with no
    args, so handlers further down print the scrubbed text. Tracebacks are
    formatted and scrubbed into ``exc_text``, which formatters print instead of
    formatting ``exc_info`` again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line (or leak)
            message = f"{record.msg!s} {record.args!r}"
        scrubbed = redact_url(message)
        if scrubbed != message or record.args:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_url(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_url(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> CredentialScrubber:
    """Attach one scrubber to every handler of `logger` (default: root); idempotent."""
    target = logger if logger is not None else logging.getLogger()
    existing = next(
        (f for h in target.handlers for f in h.filters if isinstance(f, CredentialScrubber)),
        None,
    )
    scrubber = existing if isinstance(existing, CredentialScrubber) else CredentialScrubber()
    for handler in target.handlers:
        if scrubber not in handler.filters:
            handler.addFilter(scrubber)
    return scrubber
