#!/bin/sh
# The app's entrypoint. A clock offset left by the clock-skew fault (faults/host.py) in
# /etc/outage/clock-offset applies from the service's next start: libfaketime then shifts the wall
# clock its processes read (time(), gettimeofday(), clock_gettime(CLOCK_REALTIME)); the monotonic
# clock stays true so time-outs and back-offs are not disturbed.
offset_file=/etc/outage/clock-offset
if [ -s "$offset_file" ]; then
  LD_PRELOAD=/usr/local/lib/libfaketime.so.1
  FAKETIME="$(cat "$offset_file")"
  FAKETIME_DONT_FAKE_MONOTONIC=1
  export LD_PRELOAD FAKETIME FAKETIME_DONT_FAKE_MONOTONIC
fi
exec "$@"
