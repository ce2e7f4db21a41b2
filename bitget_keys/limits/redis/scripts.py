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

__all__ = ["COMPLETE", "PAUSE_IP", "RESERVE", "RESERVE_IP", "SCRIPTS", "THROTTLE", "Script"]

US: Final = 1_000_000

#: Shared by every script: ``now`` from Redis TIME (or the testing hook), integer
#: formatting (Lua would print 1.7e15 as "1.7e+15"), the decayed margin, the entries
#: of a lane's dispatch log and the egress IP's budget.
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
-- A dispatch: 'seq slot lease done' (done 0 while in flight). It counts as completed
-- at done, or at the end of its lease when no completion came (a crashed process).
local function entry(text)
  local seq, slot, lease, done = string.match(text, '^(%d+) (%d+) (%d+) (%d+)$')
  if seq == nil then
    local at = tonumber(text) or 0
    return -1, at, at, at
  end
  return tonumber(seq), tonumber(slot), tonumber(lease), tonumber(done)
end
local function record(seq, slot, lease, done)
  return int(seq) .. ' ' .. int(slot) .. ' ' .. int(lease) .. ' ' .. int(done)
end
local function completed(lease, done)
  if done ~= 0 then return done end
  if lease <= now then return lease end
  return nil
end
-- The IP budget: slots at least `interval` apart (EVEN; a sorted set of the slots
-- reserved, since lanes book out of order: a lane's slot a second ahead must not hold
-- back another lane's slot now) and/or at most `limit` per `window` (ROLLING; the last
-- `limit` slots in grant order, the latest that left in the hash as 'floor').
local function ip_start(hash, log, slots, start, interval, limit, window)
  local ip = redis.call('HMGET', hash, 'pause', 'floor')
  start = math.max(start, tonumber(ip[1]) or 0)
  if limit > 0 and redis.call('LLEN', log) >= limit then
    local oldest = tonumber(redis.call('LINDEX', log, 0)) or 0
    start = math.max(start, oldest + window, (tonumber(ip[2]) or 0) + window)
  end
  if interval > 0 then
    -- The earliest time from start at least `interval` from every booked slot.
    local near = redis.call('ZRANGEBYSCORE', slots, int(start - interval + 1), '+inf')
    for _, text in ipairs(near) do
      local at = tonumber(text)
      if at >= start + interval then break end
      start = math.max(start, at + interval)
    end
  end
  return start, ip
end
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function ip_take(hash, log, slots, ip, start, interval, limit, window)
  local keep = math.max(start, tonumber(ip[1]) or 0) - now
  redis.call('HSET', hash, 'last', int(start))
  if interval > 0 then
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', int(now - interval))
    redis.call('ZADD', slots, int(start), int(start))
    extend(slots, math.ceil((start + interval - now) / 1000) + 1000)
  end
  if limit > 0 then
    redis.call('RPUSH', log, int(start))
    while redis.call('LLEN', log) > limit do
      local old = tonumber(redis.call('LPOP', log)) or 0
      if old > (tonumber(ip[2]) or 0) then
        ip[2] = old
        redis.call('HSET', hash, 'floor', int(old))
      end
    end
    keep = math.max(keep, start + window - now)
    extend(log, math.ceil(keep / 1000) + 1000)
  end
  extend(hash, math.ceil(keep / 1000) + 1000)
end
"""

#: Reserve one slot of a lane (and of the IP budget when KEYS[3] is given).
#: KEYS: lane hash, lane log, [IP hash, IP log, IP slots]. ARGV: window µs, limit, policy, floor
#: margin, max wait µs (-1: none), hold µs, lease µs, IP interval µs (0: no spacing),
#: IP limit (0: no rolling count), IP window µs, horizon µs (-1: none), now µs ('' = TIME).
#: Returns {granted 1 / refused 0 / blocked 2 / deferred 3, wait µs, margin ppm, lane
#: pause left µs, Redis time µs, dispatch number, lease left µs}.
#:
#: The lane's log holds its last N dispatches. Dispatch k goes no earlier than W (sliding:
#: W·(1+m)) after dispatch k-N completed: while dispatch k-N is in flight the answer is
#: "blocked", with the earliest the slot could come, and nothing is written. A granted
#: dispatch enters the log at once, in flight, so later reservers wait for its
#: completion, however late its process sends it. Slots never go backwards (the GCRA's
#: ``tat``, or the newest slot of a sliding lane), so any N+1 dispatches span at least
#: W from the first's completion to the last's slot: their arrivals, more than W.
#:
#: With a horizon, a slot further away than that is not booked ("deferred", nothing
#: written): the caller asks again shortly before it, so that a reservation made
#: meanwhile by a request of higher priority, in any process, takes it first.
_RESERVE: Final = """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local sliding = ARGV[3] == 'sliding'
local floor = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local lease = tonumber(ARGV[7])
local ip_interval = tonumber(ARGV[8])
local ip_limit = tonumber(ARGV[9])
local ip_window = tonumber(ARGV[10])
local horizon = tonumber(ARGV[11])
local lane = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'raised', 'at', 'seq')
local tat = tonumber(lane[1]) or 0
local pause = tonumber(lane[2]) or 0
local raised = tonumber(lane[3])
local margin = decayed(raised, tonumber(lane[4]), floor)
local seq = tonumber(lane[5]) or 0
local period = math.ceil(window * (1 + margin))
-- As in memory: a spacing lane's interval carries the margin, and its completions are
-- counted over W; a sliding lane's over W·(1+m).
local after = window
if sliding then after = period end
local start = math.max(now + tonumber(ARGV[6]), pause)
local log = redis.call('LRANGE', KEYS[2], 0, -1)
local n = #log
local blocked = false
if n > 0 then
  local _, slot = entry(log[n])
  start = math.max(start, slot)
end
if n >= limit then
  local _, slot, until_, done = entry(log[n - limit + 1])
  start = math.max(start, slot + after)
  local at = completed(until_, done)
  if at == nil then
    blocked = true
  else
    start = math.max(start, at + after)
  end
end
if not sliding then start = math.max(start, tat) end
local ip = nil
if #KEYS > 2 then
  start, ip = ip_start(KEYS[3], KEYS[4], KEYS[5], start, ip_interval, ip_limit, ip_window)
end
local wait = start - now
local reply = {1, wait, math.floor(margin * 1000000 + 0.5), math.max(0, pause - now), now, -1, 0}
if max_wait >= 0 and wait > max_wait then
  reply[1] = 0
  return reply
end
if blocked then
  reply[1] = 2
  return reply
end
if horizon >= 0 and wait > horizon then
  reply[1] = 3
  return reply
end
local until_ = start + lease
redis.call('RPUSH', KEYS[2], record(seq, start, until_, 0))
n = n + 1
if n > limit then redis.call('LTRIM', KEYS[2], -limit, -1) end
redis.call('HSET', KEYS[1], 'seq', int(seq + 1))
local keep = math.max(math.max(pause - now, 0), until_ - now) + period
if not sliding then
  local next_tat = start + math.ceil(window * (1 + margin) / limit)
  redis.call('HSET', KEYS[1], 'tat', int(next_tat))
  keep = math.max(keep, next_tat - now + period)
end
redis.call('PEXPIRE', KEYS[2], math.ceil(keep / 1000) + 1000)
keep = keep + decay_time(raised, floor)
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
if ip ~= nil then
  ip_take(KEYS[3], KEYS[4], KEYS[5], ip, start, ip_interval, ip_limit, ip_window)
end
reply[6] = seq
reply[7] = until_ - now
return reply
"""

#: A dispatch completed (answered, failed, or given up unsent): later reservers count
#: their window from then. KEYS: lane hash, lane log. ARGV: dispatch number, keep ms,
#: when it completed as the caller bounds it in Redis time (µs, '' = now), now µs.
#: Returns {1 if recorded, 0 if the dispatch had left the log or was recorded}.
_COMPLETE: Final = """
local seq = tonumber(ARGV[1])
local at = now
if ARGV[3] ~= '' then at = math.min(now, tonumber(ARGV[3])) end
local next_seq = tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0
local n = redis.call('LLEN', KEYS[2])
local index = seq - (next_seq - n)
if index < 0 or index >= n then return {0} end
local found, slot, until_, done = entry(redis.call('LINDEX', KEYS[2], index))
if found ~= seq or done ~= 0 then return {0} end
redis.call('LSET', KEYS[2], index, record(seq, slot, until_, at))
local keep = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < keep then redis.call('PEXPIRE', key, keep) end
end
return {1}
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
keep = math.ceil((keep + decay_time(raised, floor)) / 1000) + 1000
-- Never shortened: the hash also numbers the dispatches of the lane's log.
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return {math.floor(raised * 1000000 + 0.5), pause - now}
"""

#: Pause every lane of an egress IP. KEYS: IP hash. ARGV: duration µs, now µs.
#: Returns {pause left µs}.
_PAUSE_IP: Final = """
local pause = tonumber(redis.call('HGET', KEYS[1], 'pause')) or 0
pause = math.max(pause, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'pause', int(pause))
local keep = math.ceil((pause - now) / 1000) + 1000
-- Never shortened: the hash also keeps the rolling count's floor.
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return {pause - now}
"""

#: An IP slot on its own (Redis Cluster, where the IP keys have their own slot).
#: KEYS: IP hash, IP log, IP slots. ARGV: interval µs (0: no spacing), limit (0: no rolling
#: count), window µs, max wait µs (-1: none), now µs. Returns {granted 0/1, wait µs}.
_RESERVE_IP: Final = """
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local start, ip = ip_start(KEYS[1], KEYS[2], KEYS[3], now, interval, limit, window)
local wait = start - now
if max_wait >= 0 and wait > max_wait then return {0, wait} end
ip_take(KEYS[1], KEYS[2], KEYS[3], ip, start, interval, limit, window)
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
COMPLETE: Final = Script("complete", _COMPLETE)

#: Every script, loaded once per process before the first call.
SCRIPTS: Final = (RESERVE, THROTTLE, PAUSE_IP, RESERVE_IP, COMPLETE)
