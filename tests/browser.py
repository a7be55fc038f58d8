"""Open a `dvc plots` HTML page in headless Chromium with the network blocked and report what rendered.

A checker script is appended to a copy of the page; it waits for the charts, then writes into the DOM,
for every vega chart, whether it drew anything (non-white canvas pixels or SVG marks) and, for every
image, whether it decoded (naturalWidth > 0) and how far right it reaches. `--dump-dom` hands the DOM back.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

WINDOW = (1400, 1000)
CHECKER = """
<script>
(function () {
  function chartState(div) {
    var canvas = div.querySelector('canvas');
    if (canvas && canvas.width > 0) {
      var data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data, inked = 0;
      for (var i = 0; i < data.length; i += 4) {
        if (data[i + 3] > 0 && (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250)) inked++;
      }
      return inked;
    }
    var svg = div.querySelector('svg.marks');
    return svg ? svg.querySelectorAll('path[d]:not([d=""]), rect, line').length : 0;
  }
  function report() {
    // A chart's div holds DVC's vegaEmbed(...) call until vega-embed replaces it with the chart.
    var charts = Array.from(document.querySelectorAll('div[id]'))
      .filter(function (d) {
        return d.classList.contains('vega-embed') ||
               Array.from(d.children).some(function (s) {
                 return s.tagName === 'SCRIPT' && s.textContent.indexOf('vegaEmbed') >= 0; });
      })
      .map(function (d) { return {id: d.id, inked: chartState(d)}; });
    var images = Array.from(document.images).map(function (img) {
      return {src: img.getAttribute('src'), width: img.naturalWidth, right: img.getBoundingClientRect().right};
    });
    return {charts: charts, images: images, window: window.innerWidth, vega: typeof vegaEmbed !== 'undefined'};
  }
  var tries = 0;
  function poll() {
    var state = report();
    var done = state.charts.every(function (c) { return c.inked > 0; }) &&
               state.images.every(function (i) { return i.width > 0; });
    if (done || ++tries > 100) {
      var out = document.createElement('pre');
      out.id = 'render-check';
      out.textContent = JSON.stringify(state);
      document.body.appendChild(out);
    } else {
      setTimeout(poll, 100);
    }
  }
  window.addEventListener('load', function () { setTimeout(poll, 100); });
})();
</script>
"""


def chromium() -> str:
    """The Chromium binary (Debian's `chromium`, installed by .ci/run); skipped outside CI if missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            raise AssertionError("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def rendered(page: Path) -> dict:
    """What the page rendered offline: {"charts": [{id, inked}], "images": [{src, width, right}], ...}."""
    checked = page.with_name(f"checked-{page.name}")
    # The last </body>: vega-embed's code has one inside a string.
    head, body_end, tail = page.read_text(encoding="utf-8").rpartition("</body>")
    checked.write_text(head + CHECKER + body_end + tail, encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             # No network: every host name fails to resolve and any proxied request goes nowhere.
             "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
             "--virtual-time-budget=30000", "--dump-dom", checked.as_uri()],
            capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="render-check">(.*?)</pre>', result.stdout, re.S)
    if found is None:
        raise AssertionError(f"the checker did not report (chromium exit {result.returncode}):\n"
                             f"{result.stderr[-3000:]}")
    return json.loads(html.unescape(found.group(1)))
