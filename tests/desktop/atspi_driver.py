"""Drives the Doorstep desktop app through the accessibility tree (AT-SPI), as a screen reader would.

Used by tests/it/desktop.rs, inside a D-Bus session (the accessibility bus hangs off it) on an X display:

  atspi_driver.py --log APP_LOG -- APP [ARGS...]

starts the app with its output in APP_LOG, then reads one JSON command per line on stdin and answers one
JSON line on stdout; when stdin closes it stops the app and exits. The commands:

  {"op": "click", "name": "..."}          press the control whose accessible name starts with `name`
                                          (add "exact": true for a name that must match whole)
  {"op": "type", "name": "...", "text": "..."}  focus that text field and type into it (with xdotool);
                                          with "replace": true, what the field held is selected and
                                          deleted first
  {"op": "text"}                          every name and text on the screen, one per line

Each command waits up to "timeout" seconds (default 30) for its control to appear. Answers are
{"ok": true, ...} or {"ok": false, "error": "...", "screen": "<what was on the screen>"}.
"""

import json
import subprocess
import sys
import threading
import time

import gi

gi.require_version("Atspi", "2.0")
from gi.repository import Atspi, GLib  # noqa: E402


def document():
    """The app's web document: the tree every other lookup walks."""
    desktop = Atspi.get_desktop(0)
    for i in range(desktop.get_child_count()):
        app = desktop.get_child_at_index(i)
        if app is None or app.get_name() != "doorstep":
            continue
        found = find(app, lambda node: node.get_role() == Atspi.Role.DOCUMENT_WEB)
        if found is not None:
            return found
    return None


def nodes(root):
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        yield node
        try:
            count = node.get_child_count()
            children = [node.get_child_at_index(i) for i in reversed(range(count))]
        except GLib.Error:
            continue
        stack.extend(children)


def find(root, test):
    for node in nodes(root):
        try:
            if test(node):
                return node
        except GLib.Error:
            continue
    return None


def own_text(node):
    try:
        text = node.get_text_iface()
        if text is None:
            return ""
        return Atspi.Text.get_text(text, 0, Atspi.Text.get_character_count(text))
    except GLib.Error:
        return ""


def screen_lines(root):
    lines = []
    for node in nodes(root):
        try:
            name = node.get_name()
            role = node.get_role_name()
            leaf = node.get_child_count() == 0
        except GLib.Error:
            continue
        text = own_text(node).replace("\ufffc", "").strip()
        if name:
            lines.append(f"{role}: {name}")
        elif text and leaf:
            lines.append(text)
    return lines


def showing(node):
    states = node.get_state_set()
    return states.contains(Atspi.StateType.SHOWING) or states.contains(Atspi.StateType.VISIBLE)


def control(root, name, typed=False, exact=False):
    def named(node):
        label = node.get_name()
        if not ((label == name if exact else label.startswith(name)) and showing(node)):
            return False
        if typed:
            return node.get_state_set().contains(Atspi.StateType.EDITABLE)
        return node.get_action_iface() is not None

    return find(root, named)


def wait_for(what, timeout, probe):
    deadline = time.monotonic() + timeout
    while True:
        # While the app starts or redraws, parts of its tree come and go: an error is "not yet".
        root = None
        try:
            root = document()
            if root is not None:
                found = probe(root)
                if found is not None:
                    return root, found
        except GLib.Error:
            pass
        if time.monotonic() > deadline:
            try:
                screen = "\n".join(screen_lines(root)) if root is not None else "(no window yet)"
            except GLib.Error as error:
                screen = f"(unreadable: {error})"
            raise LookupError(f"waited {timeout}s for {what}", screen)
        time.sleep(0.1)


def run(command):
    op = command["op"]
    timeout = float(command.get("timeout", 30))
    if op == "text":
        # Nodes that vanish mid-read (a redraw) are skipped; whoever waits for a line reads again.
        _, lines = wait_for("the app's window", timeout, screen_lines)
        return {"lines": lines}
    if op not in ("click", "type"):
        raise LookupError(f"unknown op {op!r}", "")
    name = command["name"]
    typed = op == "type"
    exact = bool(command.get("exact"))
    deadline = time.monotonic() + timeout
    while True:
        _, node = wait_for(f"a control named {name!r}", timeout, lambda root: control(root, name, typed, exact))
        try:
            if typed:
                component = node.get_component_iface()
                done = component is not None and Atspi.Component.grab_focus(component)
            else:
                done = Atspi.Action.do_action(node.get_action_iface(), 0)
        except GLib.Error:
            # The control was redrawn between finding and pressing it: find it again.
            done = False
        if done:
            break
        if time.monotonic() > deadline:
            raise LookupError(f"{name!r} would not {'take the focus' if typed else 'press'}", "")
        time.sleep(0.1)
    if typed:
        # The keys go to the X window with the input focus: make that the app's window first.
        subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--limit", "1", "--name", "^Doorstep$", "windowfocus"],
            check=True,
            timeout=timeout,
        )
        if command.get("replace"):
            subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+a", "BackSpace"], check=True, timeout=timeout)
        subprocess.run(["xdotool", "type", "--delay", "15", command["text"]], check=True, timeout=timeout)
    return {}


class App:
    """The app under test. On a loaded machine GTK can fail to open a fresh Xvfb display at the very start
    ("Failed to initialize GTK", before any Doorstep code runs); the app is then started again, at most
    twice, so a test fails for what the app does, not for the machine it ran on. Any other early exit is
    left alone and shows in the test as a missing window."""

    RETRIES = 2
    WATCH_SECONDS = 30

    def __init__(self, argv):
        if len(argv) < 5 or argv[1] != "--log" or argv[3] != "--":
            sys.exit("usage: atspi_driver.py --log APP_LOG -- APP [ARGS...]")
        self.log_path = argv[2]
        self.command = argv[4:]
        self.lock = threading.Lock()
        self.stopped = False
        self.proc = self.spawn()
        threading.Thread(target=self.watch, daemon=True).start()

    def spawn(self):
        log = open(self.log_path, "ab")
        # Where this start's own output begins in the log.
        self.log_from = log.seek(0, 2)
        return subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def watch(self):
        retries = 0
        deadline = time.monotonic() + self.WATCH_SECONDS
        while time.monotonic() < deadline and retries < self.RETRIES:
            time.sleep(0.2)
            with self.lock:
                if self.stopped or self.proc.poll() is None:
                    continue
                with open(self.log_path, "rb") as log:
                    log.seek(self.log_from)
                    failed_gtk = b"Failed to initialize GTK" in log.read()
                if not failed_gtk:
                    return
                retries += 1
                with open(self.log_path, "ab") as log:
                    log.write(b"[driver] GTK could not open the display; starting the app again\n")
                time.sleep(1)
                self.proc = self.spawn()

    def stop(self):
        with self.lock:
            self.stopped = True
            app = self.proc
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


def main():
    app = App(sys.argv)
    try:
        serve()
    finally:
        app.stop()


def serve():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = {"ok": True, **run(json.loads(line))}
        except LookupError as error:
            answer = {"ok": False, "error": error.args[0], "screen": error.args[1] if len(error.args) > 1 else ""}
        except Exception as error:  # a broken tree or a bad command: report it, keep serving
            answer = {"ok": False, "error": repr(error), "screen": ""}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
