"""A table that draws only the rows on screen, so 10,000 rows cost what 50 do.

Textual's DataTable renders and measures every row it holds; this one keeps plain
pre-formatted rows in a list and paints the visible window through the Line API.
Every cell is words (or marks), with an optional tone for colour, so nothing is
told by colour alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | tuple[str, str]  # text, or (text, tone) with tone good/bad/warn/dim
TONES = ("good", "bad", "warn", "dim")
MEASURED = 200  # rows whose cells set the width of auto-sized columns


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: as wide as the widest cell (capped by max_width)
    max_width: int = 40
    align: str = "left"


class Row:
    """One row: its cells now, or a function that makes them when first drawn.

    Making cells lazily is what keeps 10,000 rows cheap: only rows that are
    drawn, sorted or filtered are ever formatted. `make(source)` makes them; one
    function shared by every row, each row holding only its source, keeps a large
    table to one object a row (a closure a row costs five, and full garbage
    collections over them stalled the console's start).
    """

    __slots__ = ("_cells", "_make", "_search", "_source", "_values", "key")

    def __init__(
        self,
        key: str,
        cells: Sequence[Cell] | None = None,
        values: Sequence[Any] = (),
        make: Callable[[Any], tuple[Sequence[Cell], Sequence[Any]]] | None = None,
        source: Any = None,
    ) -> None:
        self.key = key
        self._cells = cells
        self._values = values
        self._make = make
        self._source = source
        self._search: str | None = None

    def _made(self) -> None:
        if self._cells is None and self._make is not None:
            self._cells, self._values = self._make(self._source)
            self._make = self._source = None

    @property
    def cells(self) -> Sequence[Cell]:
        self._made()
        return self._cells or ()

    @property
    def values(self) -> Sequence[Any]:
        self._made()
        return self._values

    def text(self, index: int) -> str:
        cell = self.cells[index]
        return cell if isinstance(cell, str) else cell[0]

    def value(self, index: int) -> Any:
        return self.values[index] if self.values else self.text(index)

    def matches(self, needle: str) -> bool:
        if self._search is None:
            self._search = " ".join(
                self.text(i) for i in range(len(self.cells))
            ).lower()
        return needle in self._search


class VirtualTable(ScrollView, can_focus=True):
    """Rows with a cursor, sorting and filtering; renders the visible window only."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--good",
        "virtual-table--bad",
        "virtual-table--warn",
        "virtual-table--dim",
    }
    DEFAULT_CSS = """
    VirtualTable { height: 1fr; overflow-x: hidden; }
    VirtualTable > .virtual-table--header { text-style: bold; background: $panel; }
    VirtualTable > .virtual-table--cursor { background: $block-cursor-blurred-background; }
    VirtualTable:focus > .virtual-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: bold;
    }
    VirtualTable > .virtual-table--good { color: $success; }
    VirtualTable > .virtual-table--bad { color: $error; text-style: bold; }
    VirtualTable > .virtual-table--warn { color: $warning; }
    VirtualTable > .virtual-table--dim { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=False, init=False)

    @dataclass
    class Highlighted(Message):
        table: VirtualTable
        row: Row | None

        @property
        def control(self) -> VirtualTable:
            return self.table

    @dataclass
    class Selected(Message):
        table: VirtualTable
        row: Row

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        empty: str = "nothing here",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = list(columns)
        self.empty = empty
        self._all: list[Row] = []
        self._rows: list[Row] = []
        self._widths = [len(c.label) for c in self.columns]
        self._filter = ""
        self._sort: tuple[int, bool] | None = None

    # -- data -------------------------------------------------------------------

    @property
    def rows(self) -> list[Row]:
        """The rows shown, after filtering and sorting."""
        return self._rows

    @property
    def current(self) -> Row | None:
        return self._rows[self.cursor] if 0 <= self.cursor < len(self._rows) else None

    def set_rows(self, rows: list[Row], *, keep: str | None = None) -> None:
        """Replace the rows; keep the cursor on the row with key `keep` if present."""
        keep = (
            keep if keep is not None else (self.current.key if self.current else None)
        )
        self._all = rows
        self._widths = self._measure(rows)
        self._apply(keep)

    def set_filter(self, text: str) -> None:
        self._filter = text.strip().lower()
        self._apply(self.current.key if self.current else None)

    def sort_by(self, key: str) -> str:
        """Sort by a column; again on the same column reverses. Returns a description."""
        index = next(i for i, c in enumerate(self.columns) if c.key == key)
        reverse = bool(self._sort and self._sort[0] == index and not self._sort[1])
        self._sort = (index, reverse)
        self._apply(self.current.key if self.current else None)
        label = self.columns[index].label.lower()
        return f"sorted by {label}, {'descending' if reverse else 'ascending'}"

    def _measure(self, rows: list[Row]) -> list[int]:
        # Widths from the first rows only: measuring all would format them all.
        rows = rows[:MEASURED]
        widths = []
        for index, column in enumerate(self.columns):
            if column.width is not None:
                widths.append(column.width)
                continue
            widest = max((cell_len(r.text(index)) for r in rows), default=0)
            widths.append(min(max(widest, cell_len(column.label)), column.max_width))
        return widths

    def _apply(self, keep: str | None) -> None:
        rows = self._all
        if self._filter:
            rows = [r for r in rows if r.matches(self._filter)]
        if self._sort is not None:
            index, reverse = self._sort
            rows = sorted(
                rows, key=lambda r: _sortable(r.value(index)), reverse=reverse
            )
        self._rows = rows
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        position = 0
        if keep is not None:
            position = next((i for i, r in enumerate(rows) if r.key == keep), 0)
        self.set_reactive(VirtualTable.cursor, position)
        self._show_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self, self.current))

    # -- cursor -----------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self._show_cursor()
        self.post_message(self.Highlighted(self, self.current))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._rows) - 1))

    def move_to(self, key: str) -> bool:
        for index, row in enumerate(self._rows):
            if row.key == key:
                self.cursor = index
                return True
        return False

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_jump(self, where: int) -> None:
        self.cursor = where if where >= 0 else len(self._rows) - 1

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self, self.current))

    def _refresh_row(self, index: int) -> None:
        y = index + 1 - round(self.scroll_offset.y)
        if 0 < y < self.size.height:
            self.refresh_line(y)

    def _show_cursor(self) -> None:
        # The header occupies line 0 of the viewport; keep the cursor row below it.
        top = round(self.scroll_offset.y)
        height = max(1, self.scrollable_content_region.height - 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        self._show_cursor()

    def on_click(self, event: Any) -> None:
        index = round(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self._rows):
            self.cursor = index

    # -- painting ---------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("virtual-table--header")
            text = self._line([c.label.upper() for c in self.columns])
            return Strip([Segment(set_cell_size(text, width), style)])

        index = round(self.scroll_offset.y) + y - 1
        if not self._rows:
            if y == 1:
                style = base + self.get_component_rich_style("virtual-table--dim")
                return Strip([Segment(set_cell_size(self.empty, width), style)])
            return Strip.blank(width, base)
        if index >= len(self._rows):
            return Strip.blank(width, base)
        row = self._rows[index]
        cursor = index == self.cursor
        line_style = base + (
            self.get_component_rich_style("virtual-table--cursor")
            if cursor
            else Style()
        )
        segments = []
        last = len(self.columns) - 1
        spare = width - (sum(self._widths) + last)
        for position, (column, cell_width) in enumerate(
            zip(self.columns, self._widths, strict=True)
        ):
            if position == last and spare > 0:
                cell_width += spare  # the last column takes what is left
            text, tone = (
                (row.cells[position], "")
                if isinstance(row.cells[position], str)
                else row.cells[position]
            )
            cell = _fit(text, cell_width, column.align)
            style = line_style
            if tone in TONES and not cursor:
                style = line_style + self.get_component_rich_style(
                    f"virtual-table--{tone}"
                )
            gap = " " if position < len(self.columns) - 1 else ""
            segments.append(Segment(cell + gap, style))
        return Strip(segments).adjust_cell_length(width, line_style)

    def _line(self, texts: list[str]) -> str:
        return " ".join(
            _fit(t, w, c.align)
            for t, w, c in zip(texts, self._widths, self.columns, strict=True)
        )

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._rows) + 1

    @property
    def visible_region(self) -> Region:
        return self.scrollable_content_region


def _fit(text: str, width: int, align: str) -> str:
    if cell_len(text) > width:
        return set_cell_size(text, max(0, width - 1)) + "…" if width else ""
    pad = width - cell_len(text)
    return " " * pad + text if align == "right" else text + " " * pad


def _sortable(value: Any) -> tuple[int, Any]:
    # None sorts last whatever the direction of the others.
    return (1, 0) if value is None else (0, value)
