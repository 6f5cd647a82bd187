"""Hourly use counts of API tokens: plain reads by a token are counted here, not audited one by one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.accounts.models import ApiTokenUseHour
from controlplane.storage.counts import AddingUpsert, hour_of

_UPSERT = AddingUpsert(ApiTokenUseHour, ["token_id", "hour"], "count")


def count_use(session: Session, token_id: int, now: datetime) -> None:
    """Add one use to the token's current hour (concurrent workers add up, never overwrite)."""
    _UPSERT.run(session.get_bind().dialect.name, session.execute,
                [{"token_id": token_id, "hour": hour_of(now), "count": 1}])


def use_counts(session: Session, token_id: int) -> dict[datetime, int]:
    """The token's uses per hour (UTC hour start → count), oldest first."""
    rows = session.execute(select(ApiTokenUseHour.hour, ApiTokenUseHour.count)
                           .where(ApiTokenUseHour.token_id == token_id).order_by(ApiTokenUseHour.hour))
    return {hour_of(hour): int(count) for hour, count in rows}
