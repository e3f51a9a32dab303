"""The shop registry: who gets the reminder for a zone's shop id, and over which channel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from review_ui import audit
from review_ui.clock import Clock
from review_ui.db import Store
from review_ui.reminders.phone import PhoneError, normalize_phone

ShopId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Text = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]


class ShopIn(BaseModel):
    """A shop as an admin enters it (form or API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ShopId = Field(description="the id zones use in shop.id")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    address: Text = ""
    operator: Text = ""
    contact: Text = ""
    channel: Literal["email", "webhook", "mqtt", "sms"]
    target: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)] = Field(
        description="e-mail address, https:// webhook URL, MQTT topic, or phone number (sms)"
    )
    locale: Literal["zh-CN", "en"] = "zh-CN"

    @field_validator("target")
    @classmethod
    def _phone_in_e164(cls, target: str, info: ValidationInfo) -> str:
        """An SMS number is kept as +86...: one form for the rate limit and both providers."""
        if info.data.get("channel") != "sms":
            return target
        try:
            return normalize_phone(target)
        except PhoneError:
            return target  # the model rule below names the problem for the form

    @model_validator(mode="after")
    def _target_fits_channel(self) -> ShopIn:
        if self.channel == "email" and ("@" not in self.target or any(c in self.target for c in " \r\n<>,")):
            raise ValueError("target must be one e-mail address for channel email")
        if self.channel == "webhook" and not self.target.startswith(("http://", "https://")):
            raise ValueError("target must be an http(s) URL for channel webhook")
        if self.channel == "mqtt" and (
            any(c in self.target for c in "+#\x00") or self.target.startswith("/")
        ):
            raise ValueError("target must be an MQTT topic without wildcards for channel mqtt")
        if self.channel == "sms":
            try:
                normalize_phone(self.target)
            except PhoneError as exc:
                raise ValueError(f"target must be a phone number for channel sms: {exc}") from None
        return self


class ShopError(Exception):
    def __init__(self, message: str, status_code: int = 409) -> None:
        super().__init__(message)
        self.status_code = status_code


COLUMNS = ("id", "name", "address", "operator", "contact", "channel", "target", "locale")


class Shops:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def all(self) -> list[dict[str, Any]]:
        return list(self.store.read().query(f"SELECT {', '.join(COLUMNS)} FROM shops ORDER BY id"))

    def get(self, shop_id: str) -> dict[str, Any] | None:
        rows = list(
            self.store.read().query(f"SELECT {', '.join(COLUMNS)} FROM shops WHERE id = ?", [shop_id])
        )
        return rows[0] if rows else None

    def create(self, shop: ShopIn, by: str, ip: str = "") -> None:
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM shops WHERE id = ?", [shop.id]).fetchone():
                raise ShopError(f"shop {shop.id!r} exists")
            db.execute(
                f"INSERT INTO shops ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [getattr(shop, c) for c in COLUMNS],
            )
            audit.record(db, self.clock, by, "shop.create", shop.id, shop.model_dump(), ip)

    def update(self, shop_id: str, shop: ShopIn, by: str, ip: str = "") -> None:
        if shop.id != shop_id:
            raise ShopError("the id in the body differs from the one in the path", 422)
        with self.store.write() as db:
            cursor = db.execute(
                f"UPDATE shops SET {', '.join(c + ' = ?' for c in COLUMNS[1:])} WHERE id = ?",
                [*(getattr(shop, c) for c in COLUMNS[1:]), shop_id],
            )
            if cursor.rowcount == 0:
                raise ShopError("no such shop", 404)
            audit.record(db, self.clock, by, "shop.update", shop_id, shop.model_dump(), ip)

    def delete(self, shop_id: str, by: str, ip: str = "") -> None:
        with self.store.write() as db:
            if db.execute("DELETE FROM shops WHERE id = ?", [shop_id]).rowcount == 0:
                raise ShopError("no such shop", 404)
            audit.record(db, self.clock, by, "shop.delete", shop_id, {}, ip)
