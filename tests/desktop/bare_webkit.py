"""The cold-start benchmark's second floor (scripts/bench-cold-start): the same bare WebKitGTK window as
bare_webkit.c, from Python through GObject introspection (WebKit2 4.1, Gtk 3). Its time includes
starting Python and loading the GObject bindings, which the app does not pay; it is shown beside the C
floor for comparison with figures measured that way.

  bare_webkit.py PAGE.html
"""

import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import GLib, Gtk, WebKit2  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bare_webkit.py PAGE.html")
    with open(sys.argv[1], encoding="utf-8") as page:
        html = page.read()
    GLib.set_prgname("bare-webkit-py")
    window = Gtk.Window(title="Doorstep floor")
    window.set_default_size(390, 844)
    window.connect("destroy", Gtk.main_quit)
    view = WebKit2.WebView()
    window.add(view)
    view.load_html(html, None)
    window.show_all()
    Gtk.main()


if __name__ == "__main__":
    main()
