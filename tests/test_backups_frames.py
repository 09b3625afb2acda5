"""A PostgreSQL backup starts a zstd frame where each table's data starts, so that
each loader of a restore beside reads the table of contents and its own tables
only. A backup whose manifest lists no frames, or only some, still restores."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
import zstandard

from core import backups
from core.backups import catalog, pg_beside, stream
from core.backups.catalog import Backup
from core.backups.dumpers import PgDataBlocks
from tests.backups_helpers import load_pagila, state_of, workspace


class _Trickle:
    """A pipe that hands over at most `step` bytes per read, as a slow one may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def read(self, size: int = -1) -> bytes:
        piece = self.data[self.at : self.at + min(size, self.step)]
        self.at += len(piece)
        return piece


class _Counted(PgDataBlocks):
    looked = 0

    def label(self, match: bytes) -> int | None:
        self.looked += 1
        return super().label(match)


def _archive(ids: list[int], blobs: bytes = b"") -> bytes:
    """The shape of a pg_dump custom archive: a table of contents holding look-
    alikes of a block start, one data block per id (rows as chunks), then
    large objects (block type 3) whose bytes may hold anything."""
    toc = b"PGDMP" + b"\x00" * 9 + b"\x01\x00\x00\x00\x30\x00" + b"head" * 50
    blocks = []
    for number in ids:
        rows = b"".join(
            b"\x00" + len(row).to_bytes(4, "little") + row
            for row in (f"{number}\t{n}\n".encode() for n in range(number % 50))
        )
        blocks.append(b"\x01\x00" + number.to_bytes(4, "little") + rows + b"\x00" * 5)
    if blobs:
        blocks.append(b"\x03\x00\x99\x0e\x00\x00" + blobs + b"\x00" * 5)
    return toc + b"\x00" * 8 + b"".join(blocks)


@pytest.mark.parametrize("step", [1, 7, 12, 4096, stream.CHUNK])
def test_frames_start_at_each_data_block_whatever_the_reads(
    tmp_path: Path, step: int
) -> None:
    ids = [10, 3682, 3690, 2600, 70000]
    # A large object's bytes that look like the start of table 3682's data,
    # then a long run of zeros.
    forged = b"\x00" * 5 + b"\x01\x00" + (3682).to_bytes(4, "little") + b"\x00" * 5
    data = _archive(ids, blobs=forged + b"\x00" * (1 << 20))
    cuts = _Counted()
    with (tmp_path / "backup.zst").open("wb") as out:
        written = stream.compress_into(
            _Trickle(data, step), out, progress=None, stop=None, cuts=cuts
        )
    # Once the large objects begin, nothing more is looked at.
    assert cuts.looked < 2 * step + 1000
    file = (tmp_path / "backup.zst").read_bytes()
    whole = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(file), read_across_frames=True
    )
    assert whole.read() == data
    labels = [label for label, _ in written.frames]
    assert [label for label in labels if label in ids] == ids  # 3682 once
    offsets = [offset for _, offset in written.frames] + [len(file)]
    for (label, start), end in zip(written.frames, offsets[1:], strict=True):
        piece = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(file[start:end]), read_across_frames=True
        )
        assert piece.read(6) == b"\x01\x00" + label.to_bytes(4, "little")


def test_a_look_alike_in_large_objects_starts_no_stretch(tmp_path: Path) -> None:
    data = [
        "3682; 0 16430 TABLE DATA public actor postgres",
        "3690; 0 16441 TABLE DATA public payment postgres",
        "3700; 0 0 SEQUENCE SET public actor_actor_id_seq postgres",
        "3720; 0 0 BLOBS - BLOBS ",
    ]
    manifest = {
        "id": "b1",
        "target": "t",
        "dialect": "postgresql",
        "created_at": "2026-12-04T00:00:00+00:00",
        "size": 10_000,
        # The large objects' bytes hold a look-alike naming the sequence.
        "restore_hints": {
            "frames_by_dump_id": [[3682, 200], [3690, 4000], [3700, 9000]]
        },
    }
    backup = Backup.from_manifest(manifest, tmp_path / "b1.pgdump.zst")
    starts = pg_beside._frame_starts(backup, data)
    assert starts == [(0, 200, 4000), (1, 4000, 10_000)]
    assert pg_beside._stretches(starts, data, data[:1]) == [(0, 4000)]
    # The large objects lie after the last table's data, in its frame.
    later = [(0, 200), (4000, 10_000)]
    assert pg_beside._stretches(starts, data, data[1:2]) == later
    assert pg_beside._stretches(starts, data, data[3:]) == later


def _toc(reader: str, backup: Backup, work: Path) -> list[str]:
    head = work / "head.dump"
    with head.open("wb") as out:
        for chunk in stream.decompressed(backup.path):
            out.write(chunk)
    listed = subprocess.run(
        [reader, "--list", "--section=data", str(head)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        line
        for line in listed.stdout.splitlines()
        if line.strip() and not line.startswith(";")
    ]


def _with_frames(ws, backup: Backup, frames: list | None) -> Backup:
    manifest = json.loads(backup.manifest_path.read_text())
    if frames is None:
        del manifest["restore_hints"]["frames_by_dump_id"]
    else:
        manifest["restore_hints"]["frames_by_dump_id"] = frames
    catalog.write_json(backup.manifest_path, manifest)
    catalog.index(ws.store, Backup.from_manifest(manifest, backup.path))
    return backups.get_backup(ws, backup.id)


def test_each_loader_reads_its_own_tables_and_old_manifests_still_restore(
    tmp_path: Path, pg_url: str
) -> None:
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    target = ws.target("pagila")
    before = state_of(target)
    backup = backups.create_backup(ws, "pagila")
    reader = pg_beside.reader_for(target, backup)[0].path
    data = _toc(reader, backup, tmp_path)
    entries = [line for line in data if " TABLE DATA " in line]
    order = [pg_beside._dump_id(line) for line in entries]
    frames = backup.manifest["restore_hints"]["frames_by_dump_id"]
    # Every table's data begins a frame of its own, in the dump's order.
    assert [label for label, _ in frames if label in order] == order

    payment = [line for line in entries if " payment_p2022_0" in line]
    starts = pg_beside._frame_starts(backup, data)
    alone = pg_beside._stretches(starts, data, payment[:1])
    assert alone is not None
    read = sum(end - start for start, end in alone)
    # One of the payment table's partitions, and the table of contents.
    assert read < backup.size / 4, (read, backup.size)

    first = next(label for label, _ in frames if label in order)
    frames_of = {
        "all": frames,
        "every other": frames[::2],
        # A look-alike in the table of contents naming the first table: the
        # head would be cut short, so the loaders read the whole file.
        "one cutting the table of contents": [[first, frames[1][1]], *frames],
        # Offsets a byte off: no frame starts there, so none is used.
        "a byte off": [[label, offset - 1] for label, offset in frames],
        "not pairs": [[label] for label, _ in frames],
        "none": None,
    }
    for case, kept in frames_of.items():
        backup = _with_frames(ws, backup, kept)
        with target.engine().begin() as conn:
            conn.execute(sa.text("delete from payment where amount < 5"))
            conn.execute(sa.text("delete from film_actor"))
        target.dispose()
        plan = backups.plan_restore(ws, backup.id)
        assert plan.summary["method"].startswith("beside")
        outcome = ws.executor.run(
            plan, backups.restore_target(ws, plan), confirmed=True
        )
        assert outcome.ok, (case, outcome.error)
        assert state_of(target) == before, case
    ws.close()


def test_a_large_object_that_looks_like_a_table_start_is_no_frame(
    tmp_path: Path, pg_url: str
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table first (id int primary key, v text)"))
        conn.execute(sa.text("create table last (t text)"))
        conn.execute(
            sa.text("insert into first select g, 'v' from generate_series(1, 500) g")
        )
        conn.execute(sa.text("insert into last values ('real row')"))
        blob = conn.execute(sa.text("select lo_from_bytea(0, '\\x00'::bytea)")).scalar()
    ws = workspace(tmp_path, pg_url, "shop")
    backup = backups.create_backup(ws, "shop")
    reader = pg_beside.reader_for(ws.target("shop"), backup)[0].path
    data = _toc(reader, backup, tmp_path)
    last = next(pg_beside._dump_id(line) for line in data if " last " in line)
    # The large object now holds a whole forged block of the table "last".
    row = b"forged row\n"
    forged = (
        b"\x00" * 5 + b"\x01\x00" + last.to_bytes(4, "little")
        + b"\x00" + len(row).to_bytes(4, "little") + row + b"\x00" * 5
    )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            sa.text("select lo_put(:oid, 0, :bytes)"), {"oid": blob, "bytes": forged}
        )
    engine.dispose()
    again = backups.create_backup(ws, "shop")
    labels = [
        label for label, _ in again.manifest["restore_hints"]["frames_by_dump_id"]
    ]
    assert labels.count(last) == 1
    # Even with its real frame gone from the manifest, no loader reads the
    # large object as that table's rows.
    kept = [pair for pair in again.manifest["restore_hints"]["frames_by_dump_id"]]
    again = _with_frames(ws, again, [pair for pair in kept if pair[0] != last])
    plan = backups.plan_restore(ws, again.id)
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, outcome.error
    with ws.target("shop").engine().connect() as conn:
        assert conn.execute(sa.text("select t from last")).scalars().all() == [
            "real row"
        ]
        assert (
            conn.execute(sa.text("select lo_get(:oid)"), {"oid": blob}).scalar()
            == forged
        )
    ws.close()
