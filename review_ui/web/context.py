"""Everything the web layer needs, as one typed object (no attribute bags on the app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from review_ui.auth import Accounts, LoginLimiter
from review_ui.changes import ChangeNotifier
from review_ui.clock import Clock
from review_ui.config import ReviewConfig
from review_ui.db import Store
from review_ui.evidence_links import EvidenceLinks
from review_ui.exports import VerdictExporter
from review_ui.i18n import Catalog
from review_ui.proposals import Proposals
from review_ui.reminders.dispatcher import Dispatcher
from review_ui.review import Reviewer
from review_ui.shops import Shops
from review_ui.zone_configs import ZoneConfigs


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class AppContext:
    config: ReviewConfig
    store: Store
    clock: Clock
    accounts: Accounts
    limiter: LoginLimiter
    reviewer: Reviewer
    shops: Shops
    dispatcher: Dispatcher
    zones: ZoneConfigs
    catalog: Catalog
    secret: bytes
    exporter: VerdictExporter
    links: EvidenceLinks
    changes: ChangeNotifier
    proposals: Proposals
    wake_worker: Callable[[], None] = field(default=_nothing)

    @property
    def evidence_dir(self) -> Path:
        return self.config.evidence_dir.resolve()
