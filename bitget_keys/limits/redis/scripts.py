"""
The Lua scripts the Redis scheduler runs: one atomic step per reservation, 429 or pause.

Each script reads Redis ``TIME`` (or, when its last argument is not empty, that many
microseconds: the testing hook), decides and writes in one step, and answers with
relative waits, so hosts need not agree on the time. `Script` keeps a script's text
and SHA1 for EVALSHA. The margin arithmetic is the same as `bitget_keys.limits.policy`'s,
with its constants substituted into the text.
"""

from __future__ import annotations

import hashlib
from typing import Final

from bitget_keys.limits.policy import DECAY_EVERY, DECAY_STEP, MARGIN_SEED, WIDEN

__all__ = ["PAUSE_IP", "RESERVE", "RESERVE_IP", "SCRIPTS", "THROTTLE", "Script"]

US: Final = 1_000_000

#: Shared by every script: ``now`` from Redis TIME (or the testing hook), integer
#: formatting (Lua would print 1.7e15 as "1.7e+15") and the decayed margin.
_PRELUDE: Final = """
local now
if ARGV[#ARGV] ~= '' then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x) return string.format('%.0f', x) end
local function decayed(raised, at, floor)
  if raised == nil or at == nil then return floor end
  return math.max(floor, raised - $STEP * math.floor((now - at) / $EVERY))
end
local function decay_time(raised, floor)
  if raised == nil or raised <= floor then return 0 end
  return math.ceil((raised - floor) / $STEP) * $EVERY
end
"""

#: Reserve one slot of a lane (and an IP token when KEYS[3] is given).
#: KEYS: lane hash, lane log, [IP hash]. ARGV: window µs, limit, policy, floor margin,
#: max wait µs (-1: none), hold µs, IP interval µs (0: no budget), now µs ('' = TIME).
#: Returns {granted 0/1, wait µs, margin ppm, lane pause left µs, Redis time µs}.
_RESERVE: Final = """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local sliding = ARGV[3] == 'sliding'
local floor = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local ip_interval = tonumber(ARGV[7])
local lane = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'raised', 'at')
local tat = tonumber(lane[1]) or 0
local pause = tonumber(lane[2]) or 0
local raised = tonumber(lane[3])
local margin = decayed(raised, tonumber(lane[4]), floor)
local period = math.ceil(window * (1 + margin))
local start = math.max(now + tonumber(ARGV[6]), pause)
if sliding then
  local log = redis.call('LRANGE', KEYS[2], 0, -1)
  local n = #log
  if n > 0 then start = math.max(start, tonumber(log[n])) end
  if n >= limit then start = math.max(start, tonumber(log[n - limit + 1]) + period) end
else
  start = math.max(start, tat)
end
local ip = nil
if #KEYS > 2 then
  ip = redis.call('HMGET', KEYS[3], 'tat', 'pause')
  start = math.max(start, tonumber(ip[2]) or 0)
  if ip_interval > 0 then start = math.max(start, tonumber(ip[1]) or 0) end
end
local wait = start - now
local reply = {1, wait, math.floor(margin * 1000000 + 0.5), math.max(0, pause - now), now}
if max_wait >= 0 and wait > max_wait then
  reply[1] = 0
  return reply
end
local keep = math.max(pause - now, 0) + period
if sliding then
  redis.call('RPUSH', KEYS[2], int(start))
  redis.call('LTRIM', KEYS[2], -limit, -1)
  redis.call('PEXPIRE', KEYS[2], math.ceil((start - now + period) / 1000) + 1000)
  keep = math.max(keep, start - now + period)
else
  local next_tat = start + math.ceil(window * (1 + margin) / limit)
  redis.call('HSET', KEYS[1], 'tat', int(next_tat))
  keep = math.max(keep, next_tat - now + period)
end
keep = keep + decay_time(raised, floor)
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
if ip ~= nil and ip_interval > 0 then
  local ip_tat = start + ip_interval
  redis.call('HSET', KEYS[3], 'tat', int(ip_tat))
  local ip_keep = math.max(ip_tat, tonumber(ip[2]) or 0) - now
  redis.call('PEXPIRE', KEYS[3], math.ceil(ip_keep / 1000) + 1000)
end
return reply
"""

#: A 429 on a lane: widen its margin (unless storm) and pause it, for every process.
#: KEYS: lane hash. ARGV: floor margin, max margin, pause µs, storm '1'/'0', window µs,
#: now µs. Returns {raised margin ppm, pause left µs}.
_THROTTLE: Final = """
local floor = tonumber(ARGV[1])
local lane = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'raised', 'at')
local tat = tonumber(lane[1]) or 0
local pause = tonumber(lane[2]) or 0
local margin = decayed(tonumber(lane[3]), tonumber(lane[4]), floor)
local raised = margin
if ARGV[4] ~= '1' then
  raised = math.min(tonumber(ARGV[2]), $WIDEN * math.max(margin, $SEED))
end
pause = math.max(pause, now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'raised', string.format('%.17g', raised), 'at', int(now),
  'pause', int(pause))
local keep = math.max(tat, pause) - now + math.ceil(tonumber(ARGV[5]) * (1 + raised))
keep = keep + decay_time(raised, floor)
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
return {math.floor(raised * 1000000 + 0.5), pause - now}
"""

#: Pause every lane of an egress IP. KEYS: IP hash. ARGV: duration µs, now µs.
#: Returns {pause left µs}.
_PAUSE_IP: Final = """
local ip = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local pause = math.max(tonumber(ip[2]) or 0, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'pause', int(pause))
local keep = math.max(pause, tonumber(ip[1]) or 0) - now
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
return {pause - now}
"""

#: An IP token on its own (Redis Cluster, where the IP key has its own slot).
#: KEYS: IP hash. ARGV: interval µs (0: only the pause), max wait µs (-1: none), now µs.
#: Returns {granted 0/1, wait µs}.
_RESERVE_IP: Final = """
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local ip = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local pause = tonumber(ip[2]) or 0
local start = math.max(now, pause)
if interval > 0 then start = math.max(start, tonumber(ip[1]) or 0) end
local wait = start - now
if max_wait >= 0 and wait > max_wait then return {0, wait} end
if interval > 0 then
  redis.call('HSET', KEYS[1], 'tat', int(start + interval))
  redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(start + interval, pause) - now) / 1000) + 1000)
end
return {1, wait}
"""


def _script(body: str) -> str:
    text = _PRELUDE + body
    for name, value in (
        ("$STEP", DECAY_STEP),
        ("$EVERY", int(DECAY_EVERY * US)),
        ("$WIDEN", WIDEN),
        ("$SEED", MARGIN_SEED),
    ):
        text = text.replace(name, repr(value))
    return text


class Script:
    """A Lua script and its SHA1, run with EVALSHA (loaded on a NOSCRIPT answer)."""

    __slots__ = ("name", "sha", "text")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.text = _script(body)
        self.sha = hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()


RESERVE: Final = Script("reserve", _RESERVE)
THROTTLE: Final = Script("throttle", _THROTTLE)
PAUSE_IP: Final = Script("pause_ip", _PAUSE_IP)
RESERVE_IP: Final = Script("reserve_ip", _RESERVE_IP)

#: Every script, loaded once per process before the first call.
SCRIPTS: Final = (RESERVE, THROTTLE, PAUSE_IP, RESERVE_IP)
