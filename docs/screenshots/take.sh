#!/bin/sh
# Screenshots of the overlay (pinned over another window) and the control window.
#   xvfb-run -a -s "-screen 0 1600x900x24" sh docs/screenshots/take.sh
# Needs: xvfb xcompmgr x11-apps (xmessage) imagemagick xdotool.
set -e
cd "$(dirname "$0")/../.."
xcompmgr -n &
XC=$!
# the "window below": a slide-like xmessage whose okay button sits under the overlay
xmessage -geometry 1000x300+300+430 -bg "#dfe8f3" -fg "#1d2733" -fn "-*-helvetica-bold-r-*-*-24-*-*-*-*-*-*-*" \
  "Quarterly planning - slide 4 of 12
Release schedule, accessibility review, open questions" &
XM=$!
sleep 1
QT_QPA_PLATFORM=xcb .venv/bin/python docs/screenshots/demo.py "$XM" || STATUS=$?
kill "$XM" 2>/dev/null || true
kill "$XC" 2>/dev/null || true
exit ${STATUS:-0}
