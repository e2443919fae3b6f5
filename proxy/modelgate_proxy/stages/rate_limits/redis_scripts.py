"""The two Lua scripts of the Redis backend: the same decision as :class:`~.local_counters.LocalCounters`, over
the same sliding window (:mod:`.windows`), run atomically by Redis.

A counter is one Redis hash per scope (``<prefix>:{<endpoint>}:<scope>``) with one field per measure and bucket:
``c<bucket>`` (calls) and ``t<bucket>`` (tokens). Every write renews the key's expiry to one window and a
second, so a scope nobody uses disappears by itself; buckets older than the window are deleted when read.
The clock is the Redis server's (``TIME``), one for every replica; ``n`` in the arguments replaces it (tests).

``ADMIT``: one or more admissions of one endpoint, decided one after the other (each sees the counts of those
before it), in one atomic call; a hash is read (``HGETALL``) once per call and kept up to date in the script as
admissions are counted, not read again by every admission (that read and its parse were most of the script's
time: a hash holds up to 122 fields). ``KEYS`` = the distinct hashes of the admissions (each once, however many
admissions use it); ``ARGV[1]`` = the admissions as one JSON array, admission ``i`` being ``{"s": slots, "a":
tokens, "k": [index in KEYS of its own key 1, 2, ...], "g": bucket seconds, "w": buckets per window, "p": period
seconds, "x": expiry ms, "n": now?}``, a slot being a list of alternatives, an alternative a list of meters ``[own
key index, "c"|"t", limit]``. (One argument and the distinct keys rather than one argument per admission and
every admission's keys: the client encodes each argument on its own, which cost more than the rest of an
admission.) Returns one reply per admission: ``{1, bucket, alternative per slot...}`` when admitted (the call
counted, the tokens reserved), else ``{0, slot, alternative, meter, wait ms}`` (1-based; wait ``-1``: the
reservation alone exceeds the limit).

``SETTLE``: ``KEYS`` = the token hashes of some admissions of one endpoint; ``ARGV[1]`` = JSON ``{"e": [[bucket,
tokens used minus reserved, [key index...]], ...], "g", "w", "x", "n"?}``. A bucket still in the window is
corrected (never below 0); when it has left the window, an excess is charged to the current bucket and a refund
is dropped.
"""

from __future__ import annotations

_NOW = """
local now
if spec.n then
  now = spec.n
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

ADMIT = """
local t = redis.call('TIME')
local clock = tonumber(t[1]) + tonumber(t[2]) / 1000000
local windows = {}  -- KEYS index -> the hash as read for one bucket and window, kept up to date by the admissions
local function by_bucket(x, y) return x[1] < y[1] end

local function admit(spec)
  local now = spec.n or clock
  local ks = spec.k
  local g, span, period, ttl, tokens = spec.g, spec.w, spec.p, spec.x, spec.a
  local bucket = math.floor(now / g)
  local oldest = bucket - span + 1

  local function load(k)
    local w = windows[ks[k]]
    if w and w.bucket == bucket and w.span == span then return w end
    w = {bucket = bucket, span = span, c = {total = 0, list = {}}, t = {total = 0, list = {}}}
    local flat = redis.call('HGETALL', KEYS[ks[k]])
    local stale = {}
    for i = 1, #flat, 2 do
      local field = flat[i]
      local idx = tonumber(string.sub(field, 2))
      local win = w[string.sub(field, 1, 1)]
      if idx == nil or win == nil or idx < oldest then
        stale[#stale + 1] = field
      else
        local v = tonumber(flat[i + 1])
        win.total = win.total + v
        win.list[#win.list + 1] = {idx, v}
      end
    end
    if #stale > 0 then redis.call('HDEL', KEYS[ks[k]], unpack(stale)) end
    table.sort(w.c.list, by_bucket)
    table.sort(w.t.list, by_bucket)
    windows[ks[k]] = w
    return w
  end

  local function wait_of(win, amount, limit)
    local need = win.total + amount - limit
    local freed = 0
    for _, e in ipairs(win.list) do
      freed = freed + e[2]
      if freed >= need then
        local w = (e[1] + span) * g - now
        if w < 0 then w = 0 end
        return w
      end
    end
    return period
  end

  local function refusal(alt)
    local worst, at = nil, nil
    for j, m in ipairs(alt) do
      local measure, limit = m[2], m[3]
      local amount = 1
      if measure == 't' then amount = tokens end
      local wait = nil
      if amount > limit and limit > 0 then
        wait = math.huge
      else
        local win = load(m[1])[measure]
        if win.total + amount > limit then
          if limit > 0 then wait = wait_of(win, amount, limit) else wait = period end
        end
      end
      if wait and (worst == nil or wait > worst) then worst, at = wait, j end
    end
    if worst == nil then return nil end
    return {worst, at}
  end

  local chosen = {}
  local refused = nil
  for s, slot in ipairs(spec.s) do
    local best = nil
    for a, alt in ipairs(slot) do
      local r = refusal(alt)
      if r == nil then
        chosen[s] = a
        break
      end
      if best == nil or r[1] < best[1] then best = {r[1], s, a, r[2]} end
    end
    if chosen[s] == nil and (refused == nil or best[1] > refused[1]) then refused = best end
  end
  if refused then
    local wait_ms = -1
    if refused[1] ~= math.huge then wait_ms = math.ceil(refused[1] * 1000) end
    return {0, refused[2], refused[3], refused[4], wait_ms}
  end
  local touched = {}
  for s, slot in ipairs(spec.s) do
    for _, m in ipairs(slot[chosen[s]]) do
      local amount = 1
      if m[2] == 't' then amount = tokens end
      redis.call('HINCRBY', KEYS[ks[m[1]]], m[2] .. bucket, amount)
      local win = load(m[1])[m[2]]  -- the next admission of this call reads the count from here
      win.total = win.total + amount
      local last = win.list[#win.list]
      if last and last[1] == bucket then
        last[2] = last[2] + amount
      else
        win.list[#win.list + 1] = {bucket, amount}
        if last and last[1] > bucket then table.sort(win.list, by_bucket) end
      end
      touched[m[1]] = true
    end
  end
  for k, _ in pairs(touched) do redis.call('PEXPIRE', KEYS[ks[k]], ttl) end
  local out = {1, bucket}
  for s = 1, #spec.s do out[#out + 1] = chosen[s] end
  return out
end

local replies = {}
for i, spec in ipairs(cjson.decode(ARGV[1])) do replies[i] = admit(spec) end
return replies
"""

SETTLE = "local spec = cjson.decode(ARGV[1])" + _NOW + """
local current = math.floor(now / spec.g)
local oldest = current - spec.w + 1
local touched = {}
for _, e in ipairs(spec.e) do
  local b, d = e[1], e[2]
  local field = 't' .. b
  for _, k in ipairs(e[3]) do
    local key = KEYS[k]
    local v = false
    if b >= oldest then v = redis.call('HGET', key, field) end
    if v then
      local new = tonumber(v) + d
      if new < 0 then new = 0 end
      redis.call('HSET', key, field, tostring(new))
    elseif d > 0 then
      redis.call('HINCRBY', key, 't' .. current, d)
    end
    touched[k] = true
  end
end
for k, _ in pairs(touched) do redis.call('PEXPIRE', KEYS[k], spec.x) end
return #spec.e
"""
