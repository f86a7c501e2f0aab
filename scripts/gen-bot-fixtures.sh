#!/usr/bin/env bash
# Regenerates the media that `huddle bot` sends (fixtures/bot/), from
# ffmpeg's built-in test sources: no camera, microphone or download needed.
#
#   video.ivf  VP8, 320x240, 15 fps, 6 s, a keyframe every second, ~250 kbit/s
#   audio.ogg  Opus in Ogg, 48 kHz mono, 20 ms packets, 6 s, ~32 kbit/s
#
# Both loop. The files are committed and embedded in the binary
# (include_bytes! in src/bot/media.rs); rebuild after regenerating.
# Needs Debian's ffmpeg (apt-get install ffmpeg), built with libvpx and libopus.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/bot
mkdir -p "$out"
ff=(ffmpeg -hide_banner -loglevel error -y)

# testsrc2 moves (a sweeping pattern and a running clock), so a frozen tile
# is easy to tell from a live one. No alt-ref or lagged frames: every IVF
# frame is one shown picture, which keeps frame counts comparable.
"${ff[@]}" -f lavfi -i "testsrc2=size=320x240:rate=15" -t 6 \
  -c:v libvpx -b:v 250k -minrate 100k -maxrate 400k \
  -g 15 -keyint_min 15 -auto-alt-ref 0 -lag-in-frames 0 \
  -deadline realtime -cpu-used 8 -error-resilient 1 \
  -pix_fmt yuv420p -f ivf "$out/video.ivf"

# A 440 Hz tone that beeps (on 0.5 s, off 0.5 s) so it is audible as a
# participant and shows on the speaking ring.
"${ff[@]}" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=6" \
  -af "volume='if(lt(mod(t,1),0.5),0.5,0)':eval=frame" -ac 1 \
  -c:a libopus -b:a 32k -frame_duration 20 -application audio \
  -f ogg "$out/audio.ogg"

ls -l "$out"
total=$(($(stat -c %s "$out/video.ivf") + $(stat -c %s "$out/audio.ogg")))
if [ "$total" -gt 1048576 ]; then
  echo "gen-bot-fixtures: $total bytes together, more than 1 MiB" >&2
  exit 1
fi
