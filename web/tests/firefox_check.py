"""Drives Firefox (Debian's firefox-esr, through Marionette) through the live page at argv[1].

Prints one JSON line: the browser's user agent, errors the page raised, and each pane's figures
once all four have received at least 3 events (or after 20 s).
"""
import json
import os
import socket
import sys
import tempfile
import time

from marionette_driver.marionette import Marionette

# The four TCP panes: the WebTransport pane is a strip saying why it is absent on a server
# without --quic (this one).
PANES = """
  return Array.from(document.querySelectorAll('.pane[data-transport]:not([data-state="unavailable"])')).map(p => ({
    transport: p.dataset.transport,
    state: p.querySelector('[data-field=state]').textContent.trim(),
    received: Number(p.querySelector('[data-field=received]').textContent) || 0,
    lastSeq: Number(p.querySelector('[data-field=last-seq]').textContent) || 0,
    gaps: Number(p.querySelector('[data-field=gaps]').textContent) || 0,
  }));
"""

url = sys.argv[1]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
browser = Marionette(host="127.0.0.1", port=port, bin="/usr/bin/firefox-esr", headless=True,
                     startup_timeout=60,
                     gecko_log=os.path.join(tempfile.gettempdir(), "feedlab-gecko.log"))
try:
    browser.start_session()
    browser.navigate(url)
    # Errors from here on: page scripts have run by now, so late failures are what remain.
    browser.execute_script("""
      window.__errors = [];
      addEventListener('error', e => window.__errors.push(String(e.message)));
      addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason)));""",
        sandbox=None)
    deadline = time.time() + 20
    panes = []
    while time.time() < deadline:
        panes = browser.execute_script(PANES)
        if len(panes) == 4 and all(p["received"] >= 3 for p in panes):
            break
        time.sleep(0.5)
    print(json.dumps({
        "userAgent": browser.execute_script("return navigator.userAgent"),
        "errors": browser.execute_script("return window.__errors", sandbox=None),
        "panes": panes,
    }), flush=True)
finally:
    browser.cleanup()
