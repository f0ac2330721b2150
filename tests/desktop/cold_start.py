"""Times cold starts through the accessibility tree (AT-SPI) for scripts/bench-cold-start, which runs it
inside a D-Bus session of its own on an Xvfb display.

  cold_start.py setup --app APP --log LOG
      starts APP (the desktop build, with DOORSTEP_DATA_DIR and DOORSTEP_ENROL in the environment) on its
      set-up screen, chooses the two PINs, presses "Set up this phone with the office", waits until Today
      lists the day's visits (the first sync brought them), and stops the app. Untimed.

  cold_start.py measure --runs N --app APP --floor NAME=COMMAND ... --log LOG
      N rounds; in each, APP and every floor are started once, one at a time, in an order that rotates
      from round to round (so neither always runs right after the other). Each start is timed from just
      before the process is spawned until its page shows "Today" with at least one visit button ("Open
      the visit at ..."), read from the accessibility tree, polled every POLL_SLEEP seconds. For APP the
      time to its first text on screen (the "Opening..." line) is noted too. Each process (and the WebKit
      processes it started) is then stopped and the next one starts after a short pause. One untimed
      start of each comes first. Prints one line per start, then p50 / p90 / max of each and the ratios.

A found time is the end of the poll that first saw the content: the content appeared between the start
of the poll before it and that moment, so the figures are late by up to one poll interval (the mean
interval is printed). A start in which GTK could not open the display at all (now and then on a loaded
machine) is dropped, said so, and made again.
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import gi

gi.require_version("Atspi", "2.0")
from gi.repository import Atspi, GLib  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atspi_driver  # noqa: E402

# The pause between polls; one poll itself (a few D-Bus round trips) takes a few milliseconds more.
POLL_SLEEP = 0.010
TIMEOUT = 60.0
# Between two starts: the previous WebKit processes are gone and the machine settles.
PAUSE = 1.0
TODAY_BUTTON = "Open the visit at"
PIN, SECOND_PIN = "2468", "1357"


def app_of(pid):
    """The accessible application of process `pid`, if it has registered yet."""
    desktop = Atspi.get_desktop(0)
    for i in range(desktop.get_child_count()):
        app = desktop.get_child_at_index(i)
        try:
            if app is not None and app.get_process_id() == pid:
                return app
        except GLib.Error:
            continue
    return None


def look(pid):
    """(any text on the page, Today with a visit button on the page) for process `pid`."""
    app = app_of(pid)
    if app is None:
        return False, False
    doc = atspi_driver.find(app, lambda node: node.get_role() == Atspi.Role.DOCUMENT_WEB)
    if doc is None:
        return False, False
    any_text = heading = button = False
    for node in atspi_driver.nodes(doc):
        try:
            name = node.get_name()
            role = node.get_role()
        except GLib.Error:
            continue
        text = "" if name else atspi_driver.own_text(node).replace("\ufffc", "").strip()
        if name or text:
            any_text = True
        if role == Atspi.Role.HEADING and (name == "Today" or text == "Today"):
            heading = True
        elif role == Atspi.Role.PUSH_BUTTON and name.startswith(TODAY_BUTTON):
            button = True
        if heading and button:
            return True, True
    return any_text, False


def spawn(command, log):
    # A session of its own, so the process and the WebKit processes it starts are stopped together.
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def stop(proc):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
    # The WebKit processes outlive their parent for a moment: wait until the group is empty.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class NoDisplay(Exception):
    """GTK could not open the display at the very start (seen now and then on a loaded machine with a fresh
    Xvfb, before any of the program's own code runs; tests/desktop/atspi_driver.py starts the app again
    too)."""


def exited_early(command, proc, log, log_from):
    log.flush()
    with open(log.name, "rb") as read:
        read.seek(log_from)
        if b"Failed to initialize GTK" in read.read():
            raise NoDisplay()
    raise RuntimeError(f"{command[0]} exited ({proc.returncode}) before showing Today; see the log")


def time_start(command, log):
    """Seconds from spawn to first text and to Today, and the mean interval between polls. A start whose
    GTK could not open the display is made again (at most twice) and said so."""
    for attempt in range(3):
        try:
            return time_one_start(command, log)
        except NoDisplay:
            print(f"  ({command[0]}: GTK could not open the display; started again, untimed attempt dropped)",
                  flush=True)
            time.sleep(PAUSE)
    raise RuntimeError(f"{command[0]}: GTK could not open the display three times")


def time_one_start(command, log):
    log_from = os.fstat(log.fileno()).st_size
    started = time.monotonic()
    proc = spawn(command, log)
    first = None
    polls = 0
    try:
        while True:
            polls += 1
            try:
                any_text, today = look(proc.pid)
            except GLib.Error:
                any_text, today = False, False
            now = time.monotonic() - started
            if any_text and first is None:
                first = now
            if today:
                return first, now, now / polls
            if proc.poll() is not None:
                exited_early(command, proc, log, log_from)
            if now > TIMEOUT:
                raise RuntimeError(f"{command[0]} did not show Today within {TIMEOUT:.0f} s; see the log")
            time.sleep(POLL_SLEEP)
    finally:
        stop(proc)


def quantile(values, q):
    """The nearest-rank quantile (p50 of 10 values is the 5th smallest, p90 the 9th)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


def measure(args):
    floors = []
    for spec in args.floor:
        name, _, command = spec.partition("=")
        floors.append((name, shlex.split(command)))
    subjects = [("app", shlex.split(args.app))] + floors
    log = open(args.log, "ab")
    times = {name: [] for name, _ in subjects}
    firsts = []
    intervals = []
    print("warm-up (untimed): " + ", ".join(name for name, _ in subjects), flush=True)
    for name, command in subjects:
        time_start(command, log)
        time.sleep(PAUSE)
    for round_ in range(args.runs):
        shift = round_ % len(subjects)
        for name, command in subjects[shift:] + subjects[:shift]:
            first, today, interval = time_start(command, log)
            times[name].append(today)
            intervals.append(interval)
            extra = f"  (first text {first * 1000:.0f} ms)" if name == "app" and first is not None else ""
            if name == "app" and first is not None:
                firsts.append(first)
            print(f"round {round_ + 1:2}  {name:<9} {today * 1000:6.0f} ms{extra}", flush=True)
            time.sleep(PAUSE)
    print()
    print(f"mean interval between polls: {sum(intervals) / len(intervals) * 1000:.1f} ms "
          f"(sleep {POLL_SLEEP * 1000:.0f} ms + the poll itself)")
    rows = [("app: first text", firsts)] + [(f"{name}: Today" if name == "app" else f"{name}: text", times[name])
                                            for name, _ in subjects]
    print(f"{'':<24}{'p50':>8}{'p90':>8}{'max':>8}   (seconds, n={args.runs})")
    summary = {}
    for label, values in rows:
        if not values:
            continue
        p50, p90, top = quantile(values, 0.5), quantile(values, 0.9), max(values)
        summary[label] = {"p50": p50, "p90": p90, "max": top, "all": values}
        print(f"{label:<24}{p50:8.3f}{p90:8.3f}{top:8.3f}")
    app50 = quantile(times["app"], 0.5)
    app90 = quantile(times["app"], 0.9)
    for name, _ in floors:
        f50, f90 = quantile(times[name], 0.5), quantile(times[name], 0.9)
        print(f"ratio app / {name}: p50 {app50 / f50:.2f}x, p90 {app90 / f90:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=1)


def setup(args):
    log = open(args.log, "ab")
    for attempt in range(3):
        log_from = os.fstat(log.fileno()).st_size
        proc = spawn(shlex.split(args.app), log)
        try:
            set_up(proc, log, log_from)
            return
        except NoDisplay:
            time.sleep(PAUSE)
        finally:
            stop(proc)
    raise RuntimeError("GTK could not open the display three times")


def set_up(proc, log, log_from):
    # The set-up screen, once it shows (or the app's early end: GTK could not open the display).
    deadline = time.monotonic() + TIMEOUT
    while atspi_driver.document() is None:
        if proc.poll() is not None:
            exited_early(["doorstep"], proc, log, log_from)
        if time.monotonic() > deadline:
            raise RuntimeError("the app's window never appeared; see the log")
        time.sleep(0.2)
    atspi_driver.run({"op": "type", "name": "Your PIN", "text": PIN, "timeout": 60})
    atspi_driver.run({"op": "type", "name": "Your second PIN", "text": SECOND_PIN})
    atspi_driver.run({"op": "click", "name": "Set up this phone with the office"})
    deadline = time.monotonic() + TIMEOUT
    while not look(proc.pid)[1]:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the phone was set up but Today never listed a visit; see the log")
        time.sleep(0.2)
    # Let the first sync finish writing what it brought.
    time.sleep(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    setting_up = commands.add_parser("setup")
    setting_up.add_argument("--app", required=True)
    setting_up.add_argument("--log", required=True)
    timed = commands.add_parser("measure")
    timed.add_argument("--app", required=True)
    timed.add_argument("--runs", type=int, default=10)
    timed.add_argument("--floor", action="append", default=[], metavar="NAME=COMMAND")
    timed.add_argument("--log", required=True)
    timed.add_argument("--json")
    args = parser.parse_args()
    try:
        (setup if args.command == "setup" else measure)(args)
    except (RuntimeError, LookupError) as error:
        sys.exit(f"cold_start.py: {error.args[0]}")


if __name__ == "__main__":
    main()
