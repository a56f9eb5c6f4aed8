"""Reading the report's HTML in tests: the data-values of a section's table rows, their
labels and the section's text."""

from __future__ import annotations

import html.parser


class Cells(html.parser.HTMLParser):
    """Rows of the tables in <section id=...>: the data-values of each row with a value
    (`rows`), the row's label (`labels`, its first header cell) and every text of the
    section (`texts`)."""

    def __init__(self, section: str):
        super().__init__()
        self.section, self.inside, self.rows, self.texts, self.labels = (
            section, False, [], [], [])
        self._row = None
        self._label: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.inside = attrs.get("id") == self.section
        if self.inside and tag == "tr":
            self._row, self._label = [], []
        if self.inside and tag == "td" and self._row is not None:
            self._row.append(float(attrs["data-value"]))

    def handle_endtag(self, tag):
        if self.inside and tag == "th" and self._row is not None and self._label is not None:
            self._label = ["".join(self._label)] if self._label else [""]
            self._row.append(None)  # marks the label as read
        if self.inside and tag == "tr" and self._row is not None:
            values = [v for v in self._row if v is not None]
            if values:
                self.rows.append(values)
                self.labels.append(self._label[0] if self._label else "")
            self._row = self._label = None

    def handle_data(self, data):
        if self.inside:
            self.texts.append(data)
            if self._row is not None and self._label is not None and None not in self._row:
                self._label.append(data)
