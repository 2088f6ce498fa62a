-- The store's state machine on one Redis server: every operation is one script, so each is atomic.
-- It mirrors the pure rules of tasker_async/durable/_stores/rules.py (key_in_use, expired_fate,
-- unstarted_fate, purgeable). ARGV[1] is the key prefix; keys are built here, so Redis Cluster is not
-- supported (one server, or a primary with replicas).
--
-- Keys: P:job:<id> (hash), P:ready:<queue>:<1|0> (zset per queue and lane, priority lane 1: queued jobs,
-- delayed ones included, scored by ready time; members "<16-digit seq>:<id>" so equal times keep submission
-- order), P:running (zset: id by lease end), P:finished (zset: id by purge time), P:keys (hash key -> id),
-- P:count:<queue> (hash state -> count), P:queues (hash queue -> jobs held), P:consumers and
-- P:heartbeats (hashes by consumer id), P:seq and P:tok (counters). Channels: P:done (a job id finished),
-- P:ready (a queue may have ready jobs).
--
-- Why sorted sets and not streams: the protocol requires that a job given back unstarted keeps its place
-- and that a delayed job joins the ready order when its delay ends; a stream can only append, so both
-- would need rewriting the stream. A sorted set per lane keeps the exact order with O(log n) steps.

local P = ARGV[1]
local TIME = redis.call('TIME')
local NOW = tonumber(TIME[1]) + tonumber(TIME[2]) / 1000000
local function num(x) return string.format('%.6f', x) end
local NOWS = num(NOW)
local FINISHED = {succeeded = true, failed = true, cancelled = true, dead = true}

local function jk(id) return P .. ':job:' .. id end
local function lane(q, pri) return P .. ':ready:' .. q .. ':' .. pri end

local function move(id, q, from, to)
  redis.call('HINCRBY', P .. ':count:' .. q, from, -1)
  redis.call('HINCRBY', P .. ':count:' .. q, to, 1)
  redis.call('HSET', jk(id), 'state', to)
end

local function finish(id, q, from, state)
  local j = jk(id)
  redis.call('HSET', j, 'finished_at', NOWS, 'token', '')
  redis.call('ZREM', P .. ':running', id)
  move(id, q, from, state)
  if state ~= 'dead' then
    redis.call('ZADD', P .. ':finished', num(NOW + tonumber(redis.call('HGET', j, 'ttl'))), id)
  end
  redis.call('PUBLISH', P .. ':done', id)
end

-- Queued again, ready at ready_at (a string), in its lane under its member (its submission order).
local function requeue(id, q, from, ready_at)
  local j = jk(id)
  local m, pri = unpack(redis.call('HMGET', j, 'm', 'priority'))
  redis.call('HSET', j, 'ready_at', ready_at, 'token', '')
  redis.call('ZREM', P .. ':running', id)
  redis.call('ZADD', lane(q, pri), ready_at, m)
  move(id, q, from, 'queued')
  redis.call('PUBLISH', P .. ':ready', q)
end

-- The job's queue when the lease (id, token) is still held, else false.
local function held(id, token)
  local st, tok, q = unpack(redis.call('HMGET', jk(id), 'state', 'token', 'queue'))
  if st == 'running' and tok == token then return q end
  return false
end

local function set_error(id, etype, emsg, etb)
  redis.call('HSET', jk(id), 'etype', etype, 'emsg', emsg, 'etb', etb)
end

-- rules.expired_fate: a run cut short (expired lease, or a kill).
local function cut_short(id, q)
  local once, d, maxd, cancel = unpack(redis.call('HMGET', jk(id), 'once', 'deliveries', 'maxd', 'cancel'))
  d = tonumber(d)
  if cancel == '1' then return finish(id, q, 'running', 'cancelled') end
  if once == '1' then
    set_error(id, LOST_TYPE, LOST_MESSAGE, '')
    return finish(id, q, 'running', 'failed')
  end
  if d >= tonumber(maxd) then
    set_error(id, DEAD_TYPE, 'delivered ' .. d .. ' times without an outcome', '')
    return finish(id, q, 'running', 'dead')
  end
  requeue(id, q, 'running', NOWS)
end

-- rules.key_in_use
local function key_holder(key)
  local holder = redis.call('HGET', P .. ':keys', key)
  if not holder then return false end
  local st, fin, ttl = unpack(redis.call('HMGET', jk(holder), 'state', 'finished_at', 'ttl'))
  if not st then return false end
  if st == 'dead' or not FINISHED[st] or fin == '' then return holder end
  if NOW - tonumber(fin) < tonumber(ttl) then return holder end
  return false
end

-- ARGV from i: id, name, queue, payload, priority, has_key, key, delay, once, maxd, lease, ttl
local function enqueue(i)
  local id, q, pri, has_key, key = ARGV[i], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  if has_key == '1' then
    local holder = key_holder(key)
    if holder then return holder end
  end
  if redis.call('EXISTS', jk(id)) == 1 then return id end
  local seq = redis.call('INCR', P .. ':seq')
  local m = string.format('%016d', seq) .. ':' .. id
  local ready_at = num(NOW + math.max(0, tonumber(ARGV[i + 7])))
  redis.call('HSET', jk(id), 'id', id, 'name', ARGV[i + 1], 'queue', q, 'payload', ARGV[i + 3], 'priority', pri,
    'once', ARGV[i + 8], 'maxd', ARGV[i + 9], 'lease', ARGV[i + 10], 'ttl', ARGV[i + 11], 'm', m,
    'state', 'queued', 'deliveries', 0, 'created_at', NOWS, 'ready_at', ready_at, 'started_at', '',
    'finished_at', '', 'consumer', '', 'token', '', 'cancel', '0')
  if has_key == '1' then
    redis.call('HSET', jk(id), 'key', key)
    redis.call('HSET', P .. ':keys', key, id)
  end
  redis.call('ZADD', lane(q, pri), ready_at, m)
  redis.call('HINCRBY', P .. ':count:' .. q, 'queued', 1)
  redis.call('HINCRBY', P .. ':queues', q, 1)
  redis.call('PUBLISH', P .. ':ready', q)
  return id
end

-- The lane (of queues ARGV[i .. i + n - 1]) whose first ready job comes first: its key and member.
local function first_ready(pri, i, n)
  local best, bestm, bests = false, false, 0
  for k = i, i + n - 1 do
    local r = redis.call('ZRANGEBYSCORE', lane(ARGV[k], pri), '-inf', NOWS, 'WITHSCORES', 'LIMIT', 0, 1)
    if r[1] then
      local s = tonumber(r[2])
      if not best or s < bests or (s == bests and r[1] < bestm) then
        best, bestm, bests = lane(ARGV[k], pri), r[1], s
      end
    end
  end
  return best, bestm
end

local function take(id, consumer)
  local j = jk(id)
  local tok = tostring(redis.call('INCR', P .. ':tok'))
  local d = redis.call('HINCRBY', j, 'deliveries', 1)
  redis.call('HSET', j, 'token', tok, 'started_at', NOWS, 'consumer', consumer)
  local f = redis.call('HMGET', j, 'name', 'queue', 'payload', 'priority', 'once', 'maxd', 'lease')
  redis.call('ZADD', P .. ':running', num(NOW + tonumber(f[7])), id)
  move(id, f[2], 'queued', 'running')
  return {id, f[1], f[2], f[3], f[4], f[5], d, f[6], f[7], tok}
end

-- ARGV from i: consumer, limit, n, queue * n
local function claim(i)
  local consumer, limit, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local out = {}
  for _, pri in ipairs({'1', '0'}) do
    while #out < limit do
      local key, m = first_ready(pri, i + 3, n)
      if not key then break end
      redis.call('ZREM', key, m)
      out[#out + 1] = take(string.sub(m, 18), consumer)
    end
  end
  return out
end

-- ARGV from i: n, then per outcome: id, token, state, has_result, result, has_error, etype, emsg, etb
local function complete(i)
  local out = {}
  for k = 0, tonumber(ARGV[i]) - 1 do
    local b = i + 1 + k * 9
    local id, state = ARGV[b], ARGV[b + 2]
    local q = held(id, ARGV[b + 1])
    if q then
      redis.call('HDEL', jk(id), 'result', 'etype', 'emsg', 'etb')
      if state == 'succeeded' and ARGV[b + 3] == '1' then redis.call('HSET', jk(id), 'result', ARGV[b + 4]) end
      if (state == 'failed' or state == 'dead') and ARGV[b + 5] == '1' then
        set_error(id, ARGV[b + 6], ARGV[b + 7], ARGV[b + 8])
      end
      finish(id, q, 'running', state)
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
  return out
end

-- ARGV from i: consumer id, consumer record, n, (id, token) * n
local function renew(i)
  redis.call('HSET', P .. ':consumers', ARGV[i], ARGV[i + 1])
  redis.call('HSET', P .. ':heartbeats', ARGV[i], NOWS)
  local lost, cancelled = {}, {}
  for k = 0, tonumber(ARGV[i + 2]) - 1 do
    local id = ARGV[i + 3 + 2 * k]
    if held(id, ARGV[i + 4 + 2 * k]) then
      local lease, cancel = unpack(redis.call('HMGET', jk(id), 'lease', 'cancel'))
      redis.call('ZADD', P .. ':running', num(NOW + tonumber(lease)), id)
      if cancel == '1' then cancelled[#cancelled + 1] = id end
    else
      lost[#lost + 1] = id
    end
  end
  return {lost, cancelled}
end

-- ARGV from i: started, n, (id, token) * n
local function release(i)
  for k = 0, tonumber(ARGV[i + 1]) - 1 do
    local id = ARGV[i + 2 + 2 * k]
    local q = held(id, ARGV[i + 3 + 2 * k])
    if q and ARGV[i] == '1' then
      cut_short(id, q)
    elseif q then
      -- Unstarted: the delivery is taken back, and the job keeps its member and ready time: its place.
      if redis.call('HINCRBY', jk(id), 'deliveries', -1) == 0 then redis.call('HSET', jk(id), 'started_at', '') end
      if redis.call('HGET', jk(id), 'cancel') == '1' then
        finish(id, q, 'running', 'cancelled')
      else
        requeue(id, q, 'running', redis.call('HGET', jk(id), 'ready_at'))
      end
    end
  end
  return 0
end

local function cancel(id)
  local st, q, m, pri = unpack(redis.call('HMGET', jk(id), 'state', 'queue', 'm', 'priority'))
  if not st or FINISHED[st] then return 0 end
  if st == 'running' then
    redis.call('HSET', jk(id), 'cancel', '1')
  else
    redis.call('ZREM', lane(q, pri), m)
    finish(id, q, st, 'cancelled')
  end
  return 1
end

local function reclaim()
  local ids = redis.call('ZRANGEBYSCORE', P .. ':running', '-inf', NOWS)
  for _, id in ipairs(ids) do
    local st, q = unpack(redis.call('HMGET', jk(id), 'state', 'queue'))
    if st == 'running' then cut_short(id, q) else redis.call('ZREM', P .. ':running', id) end
  end
  return #ids
end

local function requeue_dead(id)
  local st, q = unpack(redis.call('HMGET', jk(id), 'state', 'queue'))
  if st ~= 'dead' then return 0 end
  redis.call('HSET', jk(id), 'deliveries', 0, 'finished_at', '', 'cancel', '0')
  redis.call('HDEL', jk(id), 'etype', 'emsg', 'etb')
  requeue(id, q, 'dead', NOWS)
  return 1
end

-- rules.purgeable: the finished zset holds each finished (not dead) job at finished_at + result_ttl.
local function purge()
  local ids = redis.call('ZRANGEBYSCORE', P .. ':finished', '-inf', NOWS)
  local gone = 0
  for _, id in ipairs(ids) do
    redis.call('ZREM', P .. ':finished', id)
    local st, q, key = unpack(redis.call('HMGET', jk(id), 'state', 'queue', 'key'))
    if st and FINISHED[st] and st ~= 'dead' then
      redis.call('DEL', jk(id))
      redis.call('HINCRBY', P .. ':count:' .. q, st, -1)
      if redis.call('HINCRBY', P .. ':queues', q, -1) <= 0 then redis.call('HDEL', P .. ':queues', q) end
      if key and redis.call('HGET', P .. ':keys', key) == id then redis.call('HDEL', P .. ':keys', key) end
      gone = gone + 1
    end
  end
  return gone
end

-- Ready and delayed counts of queues ARGV[i .. i + n - 1], with the earliest ready time still ahead.
local function counts(i, n)
  local ready1, ready0, delayed, next_at = 0, 0, 0, ''
  for k = i, i + n - 1 do
    ready1 = ready1 + redis.call('ZCOUNT', lane(ARGV[k], '1'), '-inf', NOWS)
    ready0 = ready0 + redis.call('ZCOUNT', lane(ARGV[k], '0'), '-inf', NOWS)
    for _, pri in ipairs({'1', '0'}) do
      delayed = delayed + redis.call('ZCOUNT', lane(ARGV[k], pri), '(' .. NOWS, '+inf')
      local r = redis.call('ZRANGEBYSCORE', lane(ARGV[k], pri), '(' .. NOWS, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if r[1] and (next_at == '' or tonumber(r[2]) < tonumber(next_at)) then next_at = r[2] end
    end
  end
  return {ready1, ready0, delayed, next_at}
end

local function stats(q)
  local c = counts(2, 1)
  local running = redis.call('HGET', P .. ':count:' .. q, 'running') or '0'
  local dead = redis.call('HGET', P .. ':count:' .. q, 'dead') or '0'
  return {c[1], c[2], c[3], running, dead, NOWS, redis.call('HGETALL', P .. ':consumers'),
    redis.call('HGETALL', P .. ':heartbeats')}
end
