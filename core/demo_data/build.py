"""Regenerate shop.json.gz from the Chinook SQLite file (a developer tool).

Run it from the repository root when the demo's data should change:

    python -m core.demo_data.build path/to/Chinook_Sqlite.sqlite

Nothing at runtime imports this module; dbr ships the file it writes.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import sys
import zlib
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("shop.json.gz")
# Chinook's invoices span five years; the demo squeezes them into two months
# so that the shop takes several orders a day and the newest is minutes old.
WINDOW = 60 * 86400
HOUR = 3600
DAY = 86400

REVIEW_TEXT = {
    1: ("Skipped it after a minute.", "Not for me at all.", "Poor mix, thin sound."),
    2: ("One good chorus, little else.", "Expected more from this one."),
    3: ("Fine for background listening.", "Decent, a bit long.", "Grew on me."),
    4: ("Solid track, plays often here.", "Great energy.", "Better live, still good."),
    5: ("On repeat all week.", "A classic, flawless.", "Bought the album after."),
}


def _noise(key: str, modulo: int) -> int:
    """A stable pseudo-random number, so every build writes the same file."""
    return zlib.crc32(key.encode()) % modulo


def _when(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S")


def _rows(db: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return db.execute(sql).fetchall()


def build(source: Path) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    tables: dict[str, dict[str, Any]] = {}

    def put(name: str, columns: list[str], rows: list[Any]) -> None:
        tables[name] = {"columns": columns, "rows": [list(r) for r in rows]}

    put("genres", ["id", "name"], _rows(db, "SELECT GenreId, Name FROM Genre"))
    put(
        "media_types",
        ["id", "name"],
        _rows(db, "SELECT MediaTypeId, Name FROM MediaType"),
    )
    put("artists", ["id", "name"], _rows(db, "SELECT ArtistId, Name FROM Artist"))
    put(
        "albums",
        ["id", "title", "artist_id"],
        _rows(db, "SELECT AlbumId, Title, ArtistId FROM Album"),
    )
    put(
        "tracks",
        ["id", "name", "album_id", "media_type_id", "genre_id", "composer"]
        + ["milliseconds", "bytes", "unit_price"],
        _rows(
            db,
            "SELECT TrackId, Name, AlbumId, MediaTypeId, GenreId, Composer,"
            " Milliseconds, Bytes, UnitPrice FROM Track",
        ),
    )
    put(
        "staff",
        ["id", "first_name", "last_name", "title", "reports_to", "email", "hired_on"],
        _rows(
            db,
            "SELECT EmployeeId, FirstName, LastName, Title, ReportsTo, Email,"
            " substr(HireDate, 1, 10) FROM Employee",
        ),
    )

    invoices = _rows(
        db,
        "SELECT InvoiceId, CustomerId, InvoiceDate, BillingCity, BillingCountry,"
        " Total FROM Invoice ORDER BY InvoiceId",
    )
    newest = max(_when(row[2]) for row in invoices)
    oldest = min(_when(row[2]) for row in invoices)
    scale = WINDOW / (newest - oldest).total_seconds()
    order_age: dict[int, int] = {}
    orders = []
    spent: dict[int, float] = defaultdict(float)
    first_order: dict[int, int] = {}
    for order_id, customer_id, date, city, country, total in invoices:
        age = int((newest - _when(date)).total_seconds() * scale)
        age += _noise(f"order{order_id}", HOUR)
        order_age[order_id] = age
        if age < DAY and order_id % 3 == 0:
            status = "pending"
        elif order_id % 41 == 0:
            status = "refunded"
        else:
            status = "paid"
        orders.append([order_id, customer_id, age, city, country, total, status])
        spent[customer_id] += total
        first_order[customer_id] = max(first_order.get(customer_id, 0), age)
    columns = ["id", "customer_id", "ordered_at", "billing_city", "billing_country"]
    put("orders", columns + ["total", "status"], orders)

    customers = []
    for row in _rows(
        db,
        "SELECT CustomerId, FirstName, LastName, Company, City, State, Country,"
        " PostalCode, Phone, lower(Email), SupportRepId FROM Customer",
    ):
        customer_id = row[0]
        signed_up = first_order[customer_id] + DAY * (
            1 + _noise(f"customer{customer_id}", 200)
        )
        points = round(spent[customer_id] * 10)
        customers.append([*row, signed_up, points])
    put(
        "customers",
        ["id", "first_name", "last_name", "company", "city", "state", "country"]
        + ["postal_code", "phone", "email", "support_rep_id", "created_at"]
        + ["loyalty_points"],
        customers,
    )

    lines = _rows(
        db,
        "SELECT InvoiceLineId, InvoiceId, TrackId, UnitPrice, Quantity"
        " FROM InvoiceLine ORDER BY InvoiceLineId",
    )
    put("order_lines", ["id", "order_id", "track_id", "unit_price", "quantity"], lines)

    buyer = {row[0]: row[1] for row in invoices}
    reviews = []
    reviewed: set[tuple[int, int]] = set()
    for line_id, order_id, track_id, _price, _quantity in lines:
        key = (buyer[order_id], track_id)
        # About one bought track in six gets a review, a few days after the order.
        delay = HOUR * (2 + _noise(f"delay{line_id}", 96))
        if _noise(f"review{line_id}", 6) or key in reviewed:
            continue
        if order_age[order_id] - delay < 10 * 60:
            continue
        reviewed.add(key)
        rating = (1, 2, 3, 3, 4, 4, 4, 5, 5, 5)[_noise(f"rating{line_id}", 10)]
        texts = REVIEW_TEXT[rating]
        body = texts[_noise(f"text{line_id}", len(texts))]
        age = order_age[order_id] - delay
        reviews.append([len(reviews) + 1, key[0], track_id, rating, body, age])
    put(
        "reviews",
        ["id", "customer_id", "track_id", "rating", "body", "created_at"],
        reviews,
    )
    db.close()
    return {
        "source": "Chinook 1.4.5 by Luis Rocha, MIT licence (see CHINOOK-LICENSE.txt)",
        # Ages in seconds before the moment the demo is created.
        "age_columns": {
            "orders": ["ordered_at"],
            "customers": ["created_at"],
            "reviews": ["created_at"],
        },
        "tables": tables,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m core.demo_data.build CHINOOK.sqlite\n")
        return 2
    data = build(Path(argv[0]))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # mtime=0 keeps the file byte-identical between builds.
    OUTPUT.write_bytes(gzip.compress(text.encode("utf-8"), 9, mtime=0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
