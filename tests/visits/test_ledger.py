"""The hash chain, without a database: any change, removal or insertion is found at the first broken link."""

from datetime import UTC, date, datetime, timedelta, timezone

from servicehub.visits.ledger import GENESIS, first_broken_link, record_hash


def chain(n=4):
    records, previous = [], GENESIS
    for k in range(1, n + 1):
        record = {"id": 100 + k, "organisation_id": 7, "sequence": k, "kind": "delivery", "visit_id": k,
                  "service_date": date(2026, 12, 1), "started_at": datetime(2026, 12, 1, 1, k, tzinfo=UTC),
                  "lat": 32.2 + k / 1000, "tasks": ["floors"], "flags": [], "satisfaction": 5, "prev_hash": previous}
        record["hash"] = record_hash(record, previous)
        records.append(record)
        previous = record["hash"]
    return records


def test_an_intact_chain_holds():
    assert first_broken_link(7, chain()) is None and first_broken_link(7, []) is None


def test_a_changed_field_is_found_at_its_record():
    records = chain()
    records[2] = {**records[2], "satisfaction": 1}
    broken = first_broken_link(7, records)
    assert (broken.sequence, broken.record_id) == (3, 103) and "changed" in broken.problem


def test_a_removed_record_and_a_re_hashed_forgery_are_both_found():
    records = chain()
    assert first_broken_link(7, records[:1] + records[2:]).sequence == 2
    forged = {**records[1], "satisfaction": 1}
    forged["hash"] = record_hash(forged, forged["prev_hash"])  # re-hashing one row breaks the next link
    broken = first_broken_link(7, [records[0], forged, *records[2:]])
    assert broken.sequence == 3 and "follow" in broken.problem


def test_the_same_instant_in_another_time_zone_hashes_the_same():
    moment = datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    assert record_hash({"started_at": moment}, GENESIS) == record_hash({"started_at": moment.astimezone(UTC)}, GENESIS)
