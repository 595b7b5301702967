#!/bin/sh
# Runs *inside* the GIMP chroot; driven by tests/test_gimp_e2e.py::test_interactive_dialog_ok_restores.
#
# Starts Xvfb, runs gimp-console-3.0 whose batch script ($LR_BATCH) calls the plug-in in
# INTERACTIVE mode, waits for the plug-in's dialog window (title "Restore JPEG Line Art"), then
# saves a picture of it (screenshot.py, to $LR_OUT/dialog.png), then presses Return in it (the OK
# button is the default) like a user would.
# Xvfb runs with -noreset: the xdotool probe below opens and closes the display, and an X server
# that resets when its last client leaves refuses connections meanwhile (GIMP's among them).
# Env: LR_BATCH (script path), LR_OUT (folder for logs), LR_DISPLAY (e.g. :77).
# Exit status: GIMP's; 3 when the dialog never appeared.
set -u
Xvfb "$LR_DISPLAY" -screen 0 1024x768x24 -nolisten tcp -noreset >"$LR_OUT/xvfb.log" 2>&1 &
xvfb=$!
export DISPLAY="$LR_DISPLAY"
i=0
until xdotool getmouselocation >/dev/null 2>&1 || [ $i -ge 50 ]; do i=$((i + 1)); sleep 0.1; done

gimp-console-3.0 -i --batch-interpreter=python-fu-eval -b "exec(open('$LR_BATCH').read())" --quit \
    >"$LR_OUT/gimp.log" 2>&1 &
gimp=$!
window=""
i=0
while [ -z "$window" ] && [ $i -lt 240 ]; do  # up to 60 s
    window=$(xdotool search --name '^Restore JPEG Line Art$' 2>/dev/null | head -n 1)
    i=$((i + 1))
    sleep 0.25
done
if [ -z "$window" ]; then
    echo "the plug-in dialog did not appear" >"$LR_OUT/driver.log"
    kill "$gimp" "$xvfb" 2>/dev/null
    exit 3
fi
echo "dialog window $window: $(xdotool getwindowname "$window")" >"$LR_OUT/driver.log"
sleep 0.5
python3 "$(dirname "$0")/screenshot.py" "$window" "$LR_OUT/dialog.png" >>"$LR_OUT/driver.log" 2>&1
xdotool windowfocus --sync "$window" key --clearmodifiers Return >>"$LR_OUT/driver.log" 2>&1
wait "$gimp"
rc=$?
kill "$xvfb" 2>/dev/null
exit $rc
