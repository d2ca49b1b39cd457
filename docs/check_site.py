"""Open the built documentation site in headless Chromium, check it the way a reader sees it,
and take screenshots.

    python docs/check_site.py docs/_build/html --screenshots screenshots/

For every page checked this loads ``file://.../<page>.html`` in Debian's ``chromium``
(``apt-get install chromium``; ``$LOWRANK_REF_CHROMIUM`` names another binary), waits
until MathJax has typeset the page and every image has loaded, and asks the page itself:

* every image of the article loaded (``naturalWidth > 0``);
* every maths element (``.math``, what Sphinx and myst-nb write for ``$...$``, ``$$...$$``
  and ``:math:``) holds a MathJax rendering (``mjx-container``) of non-zero size, and MathJax
  reported no TeX error (``mjx-merror``);
* nothing was requested from another host (every URL the page requested is ``file:``,
  ``data:`` or ``blob:``) and no request failed.

The browser is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes on file descriptors 3 and 4), so no port is opened and
nothing beyond the standard library is needed. Exit status 0 when every check passed, 1
otherwise, 2 when Chromium is not installed.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Chromium flags: headless, no sandbox (CI runs as root), no GPU, and no traffic of its own
#: (no QUIC, no first-run or component updates, no sync, no background networking).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--remote-debugging-pipe")
#: The pages checked by default: the home page, every tutorial, the theory and one API page.
DEFAULT_PAGES = ("index.html", "tutorials/0*.html", "theory.html",
                 "api/generated/lowrank_ref.truncation.html")
#: The pages photographed by default: (page, file name of the screenshot).
DEFAULT_SCREENSHOTS = (("index.html", "home.png"),
                       ("tutorials/01_dynamical_low_rank_approximation.html", "tutorial.png"),
                       ("api/generated/lowrank_ref.truncation.html", "api.png"))
WIDTH, HEIGHT = 1280, 1000

# Runs in the page: waits for MathJax and the images, then reports what the reader sees.
INSPECT_JS = r"""
(async () => {
  const deadline = Date.now() + 60000;
  while (document.readyState !== "complete" && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 50));
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(r => { img.addEventListener("load", r); img.addEventListener("error", r); })));
  if (document.fonts && document.fonts.ready) { await document.fonts.ready; }
  const article = document.querySelector("article") || document.body;
  const images = Array.from(article.querySelectorAll("img")).map(img => ({
      src: img.getAttribute("src"), width: img.naturalWidth, height: img.naturalHeight}));
  const maths = Array.from(article.querySelectorAll(".math"));
  const untypeset = maths.filter(m => {
      const c = m.querySelector("mjx-container");
      if (!c) { return true; }
      const box = c.getBoundingClientRect();
      return !(box.width > 0 && box.height > 0);
  }).map(m => m.textContent.trim().slice(0, 80));
  return JSON.stringify({
      title: document.title, images: images, maths: maths.length,
      untypeset: untypeset, tex_errors: article.querySelectorAll("mjx-merror").length,
      mathjax: !!(window.MathJax && MathJax.version), mathjax_version: window.MathJax ? MathJax.version : null,
      height: document.documentElement.scrollHeight});
})()
"""


class ChromiumError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium():
    """The Chromium binary: ``$LOWRANK_REF_CHROMIUM``, else ``chromium`` (Debian's package),
    ``chromium-browser`` or ``google-chrome`` on ``PATH``; ``None`` if there is none."""
    names = [os.environ.get("LOWRANK_REF_CHROMIUM"), "chromium", "chromium-browser",
             "google-chrome"]
    for name in names:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    """Headless Chromium driven through the DevTools protocol over a pipe.

    ``with Browser() as b: b.command("Target.createTarget", url="about:blank")``; every
    command waits for its answer (``timeout`` seconds) and keeps the events that arrived
    meanwhile in ``self.events``.
    """

    def __init__(self, binary=None, timeout=120.0):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise ChromiumError("no Chromium found: apt-get install chromium "
                                "(or set LOWRANK_REF_CHROMIUM)")
        self.timeout = timeout
        self.events = []
        self._next_id = 0
        self._buffer = b""

    def __enter__(self):
        self._profile = tempfile.TemporaryDirectory(prefix="lowrank-ref-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds_3_and_4():                      # in the child, before exec
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)   # out of the way of 3 and 4
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}",
                f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, close_fds=False,
                                        preexec_fn=fds_3_and_4)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        return self

    def __exit__(self, *exc):
        try:
            if self.process.poll() is None:
                try:
                    self.command("Browser.close", timeout=10)
                except ChromiumError:
                    pass
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            self._profile.cleanup()

    def log_tail(self, n=2000):
        """The end of Chromium's own output (for error messages)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:]

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise ChromiumError(f"Chromium closed the pipe:\n{self.log_tail()}")
                self._buffer += chunk
            elif self.process.poll() is not None:
                raise ChromiumError(f"Chromium exited with status {self.process.returncode}:"
                                    f"\n{self.log_tail()}")
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def command(self, method, session=None, timeout=None, **params):
        """Send one DevTools command and return its result (an error raises)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for_event(self, method, session, timeout=None):
        """Wait until the event ``method`` of ``session`` has arrived; return it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = [e for e in self.events if e.get("method") == method
                and e.get("sessionId") == session]
        while not seen:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        return seen[0]

    def open(self, url):
        """A new tab on ``url``, attached, with requests recorded; returns its session id."""
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        session = self.command("Target.attachToTarget", targetId=target,
                               flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.command(f"{domain}.enable", session=session)
        self.command("Emulation.setDeviceMetricsOverride", session=session, width=WIDTH,
                     height=HEIGHT, deviceScaleFactor=1, mobile=False)
        self.command("Page.navigate", session=session, url=url)
        self.wait_for_event("Page.loadEventFired", session)
        return session

    def evaluate(self, session, expression):
        result = self.command("Runtime.evaluate", session=session, expression=expression,
                              awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise ChromiumError(f"script failed: {result['exceptionDetails']}")
        return result["result"]["value"]

    def screenshot(self, session, path, y=0, height=HEIGHT):
        """A PNG of the page from ``y`` down, ``height`` pixels high, ``WIDTH`` wide."""
        data = self.command("Page.captureScreenshot", session=session, format="png",
                            captureBeyondViewport=True,
                            clip={"x": 0, "y": y, "width": WIDTH, "height": height,
                                  "scale": 1})["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def requests(self, session):
        """(URLs requested, failures) of a session so far."""
        urls = [e["params"]["request"]["url"] for e in self.events
                if e.get("sessionId") == session and e.get("method") == "Network.requestWillBeSent"]
        failed = [e["params"] for e in self.events
                  if e.get("sessionId") == session and e.get("method") == "Network.loadingFailed"]
        return urls, failed


def inspect(browser, page_file, screenshot=None):
    """Load one page and return what it shows: a dict with ``title``, ``images``,
    ``maths``, ``untypeset``, ``tex_errors``, ``mathjax``, ``requests``, ``failed`` and the
    list ``problems`` (empty when every check passed)."""
    url = Path(page_file).resolve().as_uri()
    session = browser.open(url)
    report = json.loads(browser.evaluate(session, INSPECT_JS))
    urls, failed = browser.requests(session)
    report["requests"], report["failed"] = urls, failed
    problems = []
    problems += [f"image not loaded: {i['src']}" for i in report["images"] if i["width"] <= 0]
    if report["maths"] and not report["mathjax"]:
        problems.append(f"{report['maths']} maths elements but MathJax did not run")
    problems += [f"maths not typeset: {t!r}" for t in report["untypeset"]]
    if report["tex_errors"]:
        problems.append(f"{report['tex_errors']} TeX errors reported by MathJax")
    problems += [f"requested from another host: {u}" for u in urls
                 if not u.startswith(("file:", "data:", "blob:"))]
    problems += [f"request failed: {f.get('errorText')} ({f.get('requestId')})" for f in failed]
    report["problems"] = problems
    if screenshot is not None:
        browser.screenshot(session, screenshot)
        images = report["images"]
        if images:                           # a second picture, around the first figure
            box = json.loads(browser.evaluate(session, """JSON.stringify((() => {
                const img = (document.querySelector("article") || document.body).querySelector("img");
                const r = img.getBoundingClientRect();
                return {y: r.top + window.scrollY, h: r.height}; })())"""))
            top = max(0.0, box["y"] - 200)
            stem = Path(screenshot)
            browser.screenshot(session, stem.with_name(stem.stem + "_figure.png"), y=top,
                               height=min(HEIGHT, box["h"] + 400))
    browser.command("Target.closeTarget", targetId=browser.command(
        "Target.getTargetInfo", session=session)["targetInfo"]["targetId"])
    return report


def pages(site, patterns=DEFAULT_PAGES):
    """The HTML files of ``site`` matching ``patterns`` (relative globs), in order."""
    found = []
    for pattern in patterns:
        matches = sorted(Path(site).glob(pattern))
        if not matches:
            raise FileNotFoundError(f"no page {pattern} in {site}")
        found += matches
    return found


def check_site(site, screenshots=None, patterns=DEFAULT_PAGES, shots=DEFAULT_SCREENSHOTS):
    """Inspect the pages of ``site`` (and photograph ``shots`` into ``screenshots``);
    return ``{page: report}``."""
    site = Path(site)
    if screenshots is not None:
        Path(screenshots).mkdir(parents=True, exist_ok=True)
    shot_of = {page: name for page, name in shots} if screenshots is not None else {}
    reports = {}
    with Browser() as browser:
        for page in pages(site, patterns):
            rel = page.relative_to(site).as_posix()
            target = Path(screenshots) / shot_of[rel] if rel in shot_of else None
            reports[rel] = inspect(browser, page, target)
        for rel, name in shot_of.items():
            if rel not in reports:
                reports[rel] = inspect(browser, site / rel, Path(screenshots) / name)
    return reports


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site, e.g. docs/_build/html")
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="write home.png, tutorial.png, api.png (and *_figure.png) here")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("no Chromium found: apt-get install chromium (or set LOWRANK_REF_CHROMIUM)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    reports = check_site(args.site, args.screenshots)
    bad = 0
    for rel, r in reports.items():
        ok = not r["problems"]
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {rel}: {len(r['images'])} images, {r['maths']} maths "
              f"elements typeset by MathJax {r['mathjax_version']}, {len(r['requests'])} "
              f"requests, all local" + ("" if ok else "\n  " + "\n  ".join(r["problems"])))
    print(f"{len(reports)} pages checked in {time.perf_counter() - t0:.1f} s"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
