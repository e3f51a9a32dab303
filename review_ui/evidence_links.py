"""Signed, expiring links to one incident's evidence image, for reminders (no login needed).

    {public_base_url}/e/{incident_id}?exp={unix seconds}&sig={hex HMAC-SHA256}

The signature covers a purpose tag, the incident id and the expiry, keyed with the server
secret; a link opens only its own incident's image and only until it expires.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from datetime import timedelta
from urllib.parse import quote, urlencode

from review_ui.clock import Clock

PURPOSE = b"curbwatch.evidence-link/1"
# Long enough for a shop to open the link after the rectification deadline and dispute it.
TTL_H = 24.0 * 14


_SECONDS = re.compile(r"[0-9]{1,12}")


class LinkCheck(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"


class EvidenceLinks:
    def __init__(self, secret: bytes, public_base_url: str, clock: Clock, ttl_h: float = TTL_H) -> None:
        self._secret = secret
        self.base_url = public_base_url.rstrip("/")
        self.clock = clock
        self.ttl = timedelta(hours=ttl_h)

    def signature(self, incident_id: str, expires: int) -> str:
        message = PURPOSE + b"\n" + incident_id.encode() + b"\n" + str(expires).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url(self, incident_id: str) -> str:
        expires = int((self.clock.now() + self.ttl).timestamp())
        query = urlencode({"exp": expires, "sig": self.signature(incident_id, expires)})
        return f"{self.base_url}/e/{quote(incident_id, safe='')}?{query}"

    def check(self, incident_id: str, exp: str, sig: str) -> LinkCheck:
        """Signature first (a forged expiry must not tell anything), then the expiry."""
        if not _SECONDS.fullmatch(exp):  # ASCII digits only: "²".isdigit() is True, int("²") fails
            return LinkCheck.BAD_SIGNATURE
        if not hmac.compare_digest(self.signature(incident_id, int(exp)), sig):
            return LinkCheck.BAD_SIGNATURE
        if int(exp) <= self.clock.now().timestamp():
            return LinkCheck.EXPIRED
        return LinkCheck.VALID
