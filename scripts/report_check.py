"""Renders a scimload HTML report in headless Chromium (over the DevTools protocol),
saves a full-page PNG, and checks that every chart really rendered: each figure has a
non-empty box, its SVG holds its title as drawn text with a visible size, the pixels of
its box are not blank (enough ink, enough colours), and its axis labels are round
numbers. Exits 1 on any failure.

    report_check.py REPORT.html OUT.png [--expect-charts N] [--expect-fail]

--expect-fail inverts the verdict: the self-test that shows a blank chart is caught.
"""

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket
from PIL import Image

WIDTH = 1200


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("report_check: chromium not found; install the Debian package `chromium`")


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def wait_event(self, name, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == name:
                return msg
        raise TimeoutError(name)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"]["value"]


MEASURE = r"""
(() => {
  const figs = [...document.querySelectorAll('figure.chart')].map(f => {
    const r = f.getBoundingClientRect();
    const svg = f.querySelector('svg');
    const title = f.dataset.title;
    let titleBox = null;
    if (svg) {
      for (const t of svg.querySelectorAll('text')) {
        if (t.textContent.trim() === title) {
          const b = t.getBoundingClientRect();
          titleBox = [b.width, b.height];
          break;
        }
      }
    }
    return {
      title,
      box: [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height],
      shapes: svg ? svg.querySelectorAll('path, polyline, line, circle, rect').length : 0,
      labels: svg ? [...svg.querySelectorAll('text')].map(t => t.textContent.trim()) : [],
      titleBox,
    };
  });
  return {
    figures: figs,
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    height: document.documentElement.scrollHeight,
  };
})()
"""


def render(html, png):
    profile = tempfile.mkdtemp(prefix="scimload-chromium-")
    proc = subprocess.Popen(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-first-run",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=900,
                  deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url="file://" + os.path.abspath(html))
        page.wait_event("Page.loadEventFired")
        info = page.eval(MEASURE)
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": WIDTH, "height": info["height"],
                               "scale": 1})
        import base64
        data = base64.b64decode(shot["data"])
        with open(png, "wb") as f:
            f.write(data)
        return info, Image.open(io.BytesIO(data)).convert("RGB")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def check(info, image, expect_charts):
    problems = []
    for h in ("Overview", "Operations", "Capacity planning"):
        if h not in info["headings"]:
            problems.append(f"section '{h}' missing")
    figs = info["figures"]
    if len(figs) < expect_charts:
        problems.append(f"{len(figs)} charts, expected at least {expect_charts}")
    for f in figs:
        x, y, w, h = (int(round(v)) for v in f["box"])
        name = f["title"]
        if w < 200 or h < 150:
            problems.append(f"'{name}': box {w}x{h} too small")
            continue
        if not f["titleBox"] or f["titleBox"][0] < 20:
            problems.append(f"'{name}': title not drawn in the chart")
        crop = image.crop((x, y, min(x + w, image.width), min(y + h, image.height)))
        pixels = list(crop.getdata())
        ink = sum(1 for p in pixels if sum(p) < 700) / max(len(pixels), 1)
        colours = len(set(p for p in pixels if sum(p) < 700 and max(p) - min(p) > 40))
        status = "ok"
        if ink < 0.01:
            problems.append(f"'{name}': blank ({ink:.2%} ink)")
            status = "BLANK"
        elif colours < 3 or f["shapes"] < 10:
            problems.append(f"'{name}': no data drawn ({colours} colours, {f['shapes']} shapes)")
            status = "EMPTY"
        # Axis labels are round numbers: float noise ("0.30000000000000004") or a
        # trailing ".0" means a formatter is missing.
        noisy = [l for l in f["labels"] if re.fullmatch(r"-?\d+\.(\d{5,}|\d*0)", l)]
        if noisy:
            problems.append(f"'{name}': axis labels that are not round numbers: {noisy[:5]}")
            status = "NOISY LABELS"
        print(f"  chart '{name}': {w}x{h} px, {ink:.1%} ink, {colours} colours, "
              f"{f['shapes']} shapes, title {'drawn' if f['titleBox'] else 'MISSING'}: {status}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("html")
    ap.add_argument("png")
    ap.add_argument("--expect-charts", type=int, default=1)
    ap.add_argument("--expect-fail", action="store_true")
    a = ap.parse_args()
    info, image = render(a.html, a.png)
    print(f"report_check: {a.html} rendered to {a.png} ({image.width}x{image.height})")
    problems = check(info, image, a.expect_charts)
    for p in problems:
        print(f"  problem: {p}")
    if a.expect_fail:
        if not problems:
            sys.exit("report_check: the broken report passed the check; the check is blind")
        print("report_check: the broken report was caught, as it should be")
        return
    if problems:
        sys.exit(f"report_check: {len(problems)} problem(s) in {a.html}")
    print(f"report_check: {len(info['figures'])} charts rendered")


if __name__ == "__main__":
    main()
