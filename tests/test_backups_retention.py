"""Retention: what a policy keeps and why; properties that must hold for any input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backups.retention import KEEP, REMOVE, bytes_freed, evaluate
from core.config import RetentionPolicy
from core.errors import ConfigError

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class Item:
    """A catalog entry as retention sees it."""

    id: str
    created_at: datetime
    size: int = 100
    pinned: bool = False
    verify_ok: bool | None = None
    status: str = "complete"

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def verified(self) -> bool:
        return bool(self.verify_ok)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def by_id(verdicts):
    return {v.id: v for v in verdicts}


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="no retention policy for shop"):
        evaluate([Item("a", ago(hours=1))], RetentionPolicy(), NOW, target="shop")
    with pytest.raises(ConfigError):
        evaluate([], None, NOW)


def test_each_verdict_names_the_rule_and_the_period() -> None:
    items = [
        Item("h2", ago(hours=2)),
        Item("d1", ago(days=1)),
        Item("d3", ago(days=3)),
        Item("d9", ago(days=9)),
        Item("d40", ago(days=40)),
    ]
    verdicts = by_id(evaluate(items, RetentionPolicy(keep_last=1, keep_daily=3), NOW))
    assert verdicts["h2"].reasons[0] == "keep_last: 1 of the 1 newest"
    assert "keep_daily: newest of day 2026-12-04 (1 of 3)" in verdicts["h2"].reasons
    assert verdicts["d1"].reasons == ["keep_daily: newest of day 2026-12-03 (2 of 3)"]
    assert verdicts["d3"].reasons == ["keep_daily: newest of day 2026-12-01 (3 of 3)"]
    assert verdicts["d9"].action == REMOVE == verdicts["d40"].action
    assert verdicts["d9"].reasons == ["kept by no rule"]
    assert bytes_freed(verdicts.values()) == 200


def test_weekly_monthly_yearly_and_within() -> None:
    items = [
        Item("d1", ago(days=1)),
        Item("d9", ago(days=9)),
        Item("d40", ago(days=40)),
        Item("d400", ago(days=400)),
    ]
    verdicts = by_id(
        evaluate(
            items,
            RetentionPolicy(
                keep_weekly=2, keep_monthly=3, keep_yearly=2, keep_within=2 * 86400
            ),
            NOW,
        )
    )
    assert "keep_within: younger than 2d" in verdicts["d1"].reasons
    assert any(
        r.startswith("keep_weekly: newest of week 2026-W48")
        for r in verdicts["d9"].reasons
    )
    assert any(
        r.startswith("keep_monthly: newest of month 2026-10")
        for r in verdicts["d40"].reasons
    )
    assert verdicts["d400"].reasons == ["keep_yearly: newest of year 2025 (2 of 2)"]


def test_protected_backups_stay_whatever_the_rules() -> None:
    items = [
        Item("new", ago(hours=1)),
        Item("verified", ago(days=2), verify_ok=True),
        Item("pinned", ago(days=30), pinned=True),
        Item("used", ago(days=60)),
        Item("old", ago(days=90)),
    ]
    verdicts = by_id(
        evaluate(items, RetentionPolicy(keep_last=1), NOW, in_use={"used": "op123"})
    )
    assert verdicts["verified"].reasons == ["newest verified backup"]
    assert verdicts["pinned"].reasons == ["pinned"]
    assert verdicts["used"].reasons == ["used by running operation op123"]
    assert verdicts["old"].action == REMOVE


def test_an_incomplete_backup_counts_toward_no_rule() -> None:
    items = [Item("broken", ago(hours=1), status="partial"), Item("good", ago(hours=2))]
    verdicts = by_id(evaluate(items, RetentionPolicy(keep_last=1), NOW))
    assert verdicts["good"].action == KEEP
    assert verdicts["broken"].action == REMOVE
    assert verdicts["broken"].reasons == ["incomplete: counts toward no rule"]


items_strategy = st.lists(
    st.builds(
        Item,
        id=st.uuids().map(lambda u: u.hex[:12]),
        created_at=st.integers(min_value=0, max_value=3 * 365 * 86400).map(
            lambda s: NOW - timedelta(seconds=s)
        ),
        size=st.integers(min_value=0, max_value=10**9),
        pinned=st.booleans(),
        verify_ok=st.sampled_from([None, True, False]),
        status=st.sampled_from(["complete", "complete", "complete", "partial"]),
    ),
    max_size=40,
    unique_by=lambda i: i.id,
)
policies = st.builds(
    RetentionPolicy,
    keep_last=st.integers(0, 6),
    keep_hourly=st.integers(0, 6),
    keep_daily=st.integers(0, 10),
    keep_weekly=st.integers(0, 6),
    keep_monthly=st.integers(0, 12),
    keep_yearly=st.integers(0, 3),
    keep_within=st.sampled_from([0.0, 3600.0, 86400.0 * 2]),
).filter(lambda p: not p.empty)


@settings(max_examples=300, deadline=None)
@given(items_strategy, policies)
def test_never_removes_a_pinned_or_the_newest_verified_backup(items, policy) -> None:
    verdicts = by_id(evaluate(items, policy, NOW))
    assert set(verdicts) == {i.id for i in items}
    for item in items:
        if item.pinned:
            assert verdicts[item.id].action == KEEP
    verified = sorted(
        (i for i in items if i.complete and i.verified),
        key=lambda i: (i.created_at, i.id),
    )
    if verified:
        assert verdicts[verified[-1].id].action == KEEP
    for verdict in verdicts.values():
        assert verdict.reasons  # every verdict says why


@settings(max_examples=300, deadline=None)
@given(items_strategy, st.integers(1, 8))
def test_keep_last_n_keeps_the_n_newest_complete_backups(items, n) -> None:
    verdicts = by_id(evaluate(items, RetentionPolicy(keep_last=n), NOW))
    complete = sorted(
        (i for i in items if i.complete),
        key=lambda i: (i.created_at, i.id),
        reverse=True,
    )
    for item in complete[:n]:
        assert verdicts[item.id].action == KEEP
    for item in complete[n:]:
        reasons = verdicts[item.id].reasons
        assert not any(r.startswith("keep_last") for r in reasons)
    for item in items:
        if not item.complete:
            assert not any(r.startswith("keep_") for r in verdicts[item.id].reasons)


@settings(max_examples=200, deadline=None)
@given(items_strategy, policies, st.data())
def test_a_backup_in_use_is_kept_and_bytes_freed_add_up(items, policy, data) -> None:
    used = {i.id: "op" for i in items if data.draw(st.booleans())}
    verdicts = evaluate(items, policy, NOW, in_use=used)
    for verdict in verdicts:
        if verdict.id in used:
            assert verdict.action == KEEP
    assert bytes_freed(verdicts) == sum(
        i.size for i in items if by_id(verdicts)[i.id].action == REMOVE
    )
