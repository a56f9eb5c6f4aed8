// Measures the laid-out report (run at the end of <body> of a copy of it, never shipped):
// cells whose text overflows them, header cells too narrow for two characters, boxes
// sticking out of the page, and per section its paragraphs, tables and charts (with the
// smallest text as drawn). The result
// is JSON in a pre element (id "measure") that `chromium --dump-dom` prints.
(function () {
  const body = document.body.getBoundingClientRect();
  const name = (el) => `${el.closest("section")?.id || "-"}: ${el.textContent.trim().slice(0, 40)}`;
  const out = { overflow: [], narrow: [], outside: [], sections: {} };
  for (const c of document.querySelectorAll("td, th")) {
    if (c.scrollWidth > c.clientWidth + 1 || c.scrollHeight > c.clientHeight + 1) {
      out.overflow.push(name(c));
    }
    const size = parseFloat(getComputedStyle(c).fontSize);
    if (c.textContent.trim().length > 1 && c.clientWidth < 2 * size) out.narrow.push(name(c));
  }
  for (const el of document.querySelectorAll("table, svg, p, h1, h2, h3")) {
    const r = el.getBoundingClientRect();
    if (r.right > body.right + 1 || r.left < body.left - 1) out.outside.push(name(el));
  }
  for (const s of document.querySelectorAll("section")) {
    out.sections[s.id] = {
      paragraphs: [...s.querySelectorAll("p")].map((p) => p.innerText.length),
      tables: [...s.querySelectorAll("table")].map((t) => ({
        columns: t.querySelectorAll("thead th").length,
        rows: t.querySelectorAll("tbody tr").length,
      })),
      charts: [...s.querySelectorAll("svg")].map((v) => {
        const r = v.getBoundingClientRect();
        // the smallest text as drawn: its font size in the chart's units times the scale
        // the page draws the chart at (CSS px; 1 pt = 4/3 px)
        const scale = v.viewBox.baseVal && v.viewBox.baseVal.width
          ? r.width / v.viewBox.baseVal.width : 1;
        const sizes = [...v.querySelectorAll("text")].map(
          (t) => parseFloat(getComputedStyle(t).fontSize) * scale);
        return { width: r.width, height: r.height, texts: sizes.length,
                 marks: v.querySelectorAll("path, use, rect, line, polyline").length,
                 smallest_font_px: sizes.length ? Math.min(...sizes) : null };
      }),
    };
  }
  const pre = document.createElement("pre");
  pre.id = "measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
