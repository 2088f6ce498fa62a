-- The store's state machine on one Redis server: every operation is one function call (scripts.py), so
-- each is atomic.
-- It mirrors the pure rules of tasker_async/durable/_stores/rules.py (key_in_use, expired_fate,
-- unstarted_fate, purgeable). ARGV[1] is the key prefix; keys are built here, so Redis Cluster is not
-- supported (one server, or a primary with replicas).
--
-- Keys: P:job:<id> (hash), P:ready:<queue>:<1|0> (zset per queue and lane, priority lane 1: queued jobs,
-- delayed ones included, scored by ready time; members "<16-digit seq>:<id>" so equal times keep submission
-- order), P:running (zset: id by lease end), P:finished (zset: id by purge time), P:keys (hash key -> id),
-- P:count:<queue> (hash state -> count), P:queues (hash queue -> jobs held), P:consumers and
-- P:heartbeats (hashes by consumer id), P:seq and P:tok (counters), P:ended:<state>:<queue> (zset per finished
-- state and queue: id by finished_at, what the listing reads newest first; a job leaves it when it is
-- requeued or purged). Channels: P:done (job ids finished, and run ids ended), P:ready (a queue has jobs ready
-- now), P:later (a queue got a delayed job), P:cancel (the id of a consumer holding a running job asked to be
-- cancelled), P:handed-to:<consumer> (jobs claimed for a waiting consumer as they were stored: handoff.lua,
-- which also holds the offers' keys). A run step's job holds 'step' in its hash; the runs' keys are runs.lua's.
--
-- Why sorted sets and not streams: the protocol requires that a job given back unstarted keeps its place
-- and that a delayed job joins the ready order when its delay ends; a stream can only append, so both
-- would need rewriting the stream. A sorted set per lane keeps the exact order with O(log n) steps.

-- The library's top level runs once, when the server loads it (scripts.py); what follows up to begin is
-- the state of one call, which begin sets afresh at the start of every call. ARGV: the call's arguments,
-- the key prefix first (P); NOW: the server's clock.
local ARGV, P, NOW, NOWS
local function num(x) return string.format('%.6f', x) end
local FINISHED = {succeeded = true, failed = true, cancelled = true, dead = true}
-- What the call finished and which queues got ready jobs: published once, at its end (see notify), so a
-- batch of a thousand outcomes is one message, not a thousand. CANCELS: the consumers holding running jobs
-- the call asked to be cancelled (see ask_cancel).
local DONE, READY, LATER, CANCELS
-- The snapshots of the jobs complete recorded, told with their ids (see told_row).
local ROWS
-- The claim rows of the jobs handed to waiting consumers, by consumer (handoff.lua): one message each, by flush.
local HANDED
-- Count changes per queue and state (and jobs held per queue), applied once per call by flush: a batch
-- of a thousand jobs of one queue is two HINCRBYs, not two thousand.
local COUNTS, HELD
-- The jobs that finished, per P:ended key ({finished_at, id} flat): one ZADD per key and call, by flush.
local ENDED
-- Workflow runs (machine.lua, runs.lua, run_calls.lua): scripts.py makes them the body of load_runs. A call
-- builds their functions only when it meets a run step's job: one of plain jobs pays nothing for them.
local load_runs
-- The hand-off to waiting consumers (handoff.lua, which follows this file in the library): hand finds the
-- consumer an offer stands for, give claims a job for it.
local hand, give
local RUNS = false

-- A call begins: its arguments, the server's clock, and its state empty.
local function begin(args)
  ARGV, P = args, args[1]
  local time = redis.call('TIME')
  NOW = tonumber(time[1]) + tonumber(time[2]) / 1000000
  NOWS = num(NOW)
  DONE, READY, LATER, CANCELS, ROWS, HANDED, COUNTS, HELD, ENDED = {}, {}, {}, {}, {}, {}, {}, {}, {}
  RUNS = false
end

local function runs()
  if not RUNS then RUNS = load_runs() end
  return RUNS
end
-- The runs this call started, resumed or ended (kind, run id, workflow, at; flat), for its reply.
local function run_events()
  if RUNS then return RUNS.events end
  return {}
end

local function jk(id) return P .. ':job:' .. id end
local function lane(q, pri) return P .. ':ready:' .. q .. ':' .. pri end

local function count(q, from, to, n)
  local c = COUNTS[q]
  if not c then c = {}; COUNTS[q] = c end
  if from then c[from] = (c[from] or 0) - n end
  c[to] = (c[to] or 0) + n
end

local function move(id, q, from, to)
  count(q, from, to, 1)
  redis.call('HSET', jk(id), 'state', to)
end

local function ended_key(q, state) return P .. ':ended:' .. state .. ':' .. q end

-- The job finished now in state: it joins the listing's index (written by flush).
local function ended(id, q, state)
  local key = ended_key(q, state)
  local members = ENDED[key]
  if not members then members = {}; ENDED[key] = members end
  members[#members + 1] = NOWS
  members[#members + 1] = id
end

-- cmd key followed by the flat list args, sent in chunks: Lua's unpack takes a bounded number of values.
local function bulk(cmd, key, args)
  for s = 1, #args, 2000 do redis.call(cmd, key, unpack(args, s, math.min(s + 1999, #args))) end
end

-- A batch sent as one argument of records of per frames each (codec.frames: a 4-byte little-endian length,
-- then the bytes): a thousand jobs are one argument to send and to read, not twelve thousand, and a record
-- is read by one struct.unpack (C), several times faster than parsing netstrings in Lua.
local function frames(blob, per)
  local out, pos, n, layout = {}, 1, #blob, '<' .. string.rep('I4c0', per)
  while pos <= n do
    local record = {struct.unpack(layout, blob, pos)}
    for k = 1, per do out[#out + 1] = record[k] end
    pos = record[per + 1]
  end
  return out
end

-- Netstrings ("<length>:<bytes>" each, codec.pack): how a run's stored values (step refs, statuses) are kept.
local function fields(blob)
  local out, pos = {}, 1
  while pos <= #blob do
    local colon = string.find(blob, ':', pos, true)
    local n = tonumber(string.sub(blob, pos, colon - 1))
    out[#out + 1] = string.sub(blob, colon + 1, colon + n)
    pos = colon + n + 1
  end
  return out
end

-- quiet: a run's own stop of its job, which the run reports itself.
local function finish(id, q, from, state, quiet)
  local j = jk(id)
  redis.call('HSET', j, 'finished_at', NOWS, 'token', '')
  redis.call('ZREM', P .. ':running', id)
  move(id, q, from, state)
  ended(id, q, state)
  local ttl, step = unpack(redis.call('HMGET', j, 'ttl', 'step'))
  if state ~= 'dead' then
    redis.call('ZADD', P .. ':finished', num(NOW + tonumber(ttl)), id)
  end
  DONE[#DONE + 1] = id
  if step then runs().step_ended(id, step, state, nil, nil, quiet) end
end

-- Queued again, ready at ready_at (a string), in its lane under its member (its submission order).
local function requeue(id, q, from, ready_at)
  local j = jk(id)
  local m, pri = unpack(redis.call('HMGET', j, 'm', 'priority'))
  redis.call('HSET', j, 'ready_at', ready_at, 'token', '')
  redis.call('ZREM', P .. ':running', id)
  redis.call('ZADD', lane(q, pri), ready_at, m)
  move(id, q, from, 'queued')
  READY[q] = true
end

-- The job's queue when the lease (id, token) is still held, else false.
local function held(id, token)
  local st, tok, q = unpack(redis.call('HMGET', jk(id), 'state', 'token', 'queue'))
  if st == 'running' and tok == token then return q end
  return false
end

-- A running job is asked to be cancelled: the flag its holder's next renewal reads, and a message to the
-- holder (cancel_requests.py), which renews at once instead of at its next lease tick.
local function ask_cancel(id, consumer)
  redis.call('HSET', jk(id), 'cancel', '1')
  if consumer and consumer ~= '' then CANCELS[consumer] = true end
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
    local times = (tonumber(d) == 1) and 'once' or (d .. ' times')
    set_error(id, DEAD_TYPE, 'delivered ' .. times .. ' without an outcome', '')
    return finish(id, q, 'running', 'dead')
  end
  requeue(id, q, 'running', redis.call('HGET', jk(id), 'ready_at'))  -- its old place (rules.expired_fate)
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

-- F from i: id, name, queue, payload, priority, has_key, key, delay, once, maxd, lease, ttl; seq is the
-- job's submission number. Lanes gets the job's score and member, for one ZADD per lane and batch.
local function enqueue(F, i, seq, lanes)
  local id, q, pri, has_key, key = F[i], F[i + 2], F[i + 4], F[i + 5], F[i + 6]
  if has_key == '1' then
    local holder = key_holder(key)
    if holder then return holder end
  end
  if redis.call('EXISTS', jk(id)) == 1 then return id end
  local m = string.format('%016d', seq) .. ':' .. id
  local ready_at = num(NOW + math.max(0, tonumber(F[i + 7])))
  redis.call('HSET', jk(id), 'id', id, 'name', F[i + 1], 'queue', q, 'payload', F[i + 3], 'priority', pri,
    'once', F[i + 8], 'maxd', F[i + 9], 'lease', F[i + 10], 'ttl', F[i + 11], 'm', m,
    'state', 'queued', 'deliveries', 0, 'created_at', NOWS, 'ready_at', ready_at, 'started_at', '',
    'finished_at', '', 'consumer', '', 'token', '', 'cancel', '0')
  if has_key == '1' then
    redis.call('HSET', jk(id), 'key', key)
    redis.call('HSET', P .. ':keys', key, id)
  end
  count(q, false, 'queued', 1)
  HELD[q] = (HELD[q] or 0) + 1
  local delayed = tonumber(F[i + 7]) > 0
  if not delayed then
    -- A consumer waiting for jobs of its queue takes it now: claimed for it here, not left for its next claim.
    local consumer = hand(q, pri)
    if consumer then
      give(id, consumer)
      return id
    end
  end
  local l = lane(q, pri)
  local members = lanes[l]
  if not members then members = {}; lanes[l] = members end
  members[#members + 1] = ready_at
  members[#members + 1] = m
  -- A delayed job tells the waiters to look at when it is due; a ready one, to come and claim.
  if delayed then LATER[q] = true else READY[q] = true end
  return id
end

-- F: 12 fields per job (see enqueue); the ids, in order.
local function enqueue_many(F)
  local n = #F / 12
  local last = redis.call('INCRBY', P .. ':seq', n)
  local out, lanes = {}, {}
  for k = 0, n - 1 do out[#out + 1] = enqueue(F, 1 + 12 * k, last - n + 1 + k, lanes) end
  for l, members in pairs(lanes) do bulk('ZADD', l, members) end
  return out
end

-- Up to need ready members of lane pri over queues ARGV[i .. i + n - 1], in ready order: {score, member, key}.
local function first_ready(pri, i, n, need)
  local found = {}
  for k = i, i + n - 1 do
    local key = lane(ARGV[k], pri)
    local r = redis.call('ZRANGEBYSCORE', key, '-inf', NOWS, 'WITHSCORES', 'LIMIT', 0, need)
    for j = 1, #r, 2 do found[#found + 1] = {tonumber(r[j + 1]), r[j], key} end
  end
  if n > 1 then
    table.sort(found, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  end
  return found
end

-- What a claim tells of a job: f, its fields CLAIM_FIELDS in order; d, its deliveries; tok, its token.
local CLAIM_FIELDS = {'name', 'queue', 'payload', 'priority', 'once', 'maxd', 'lease', 'deliveries'}
local function claim_row(id, f, d, tok) return {id, f[1], f[2], f[3], f[4], f[5], d, f[6], f[7], tok} end

-- The job (id) taken by consumer under token tok: its claim row, and its lease end for the running zset.
local function take(id, consumer, tok)
  local j = jk(id)
  local f = redis.call('HMGET', j, unpack(CLAIM_FIELDS))
  local d = tonumber(f[8]) + 1
  redis.call('HSET', j, 'state', 'running', 'deliveries', d, 'token', tok, 'started_at', NOWS, 'consumer', consumer)
  count(f[2], 'queued', 'running', 1)
  return claim_row(id, f, d, tok), num(NOW + tonumber(f[7]))
end

-- ARGV from i: consumer, limit, n, queue * n; limit: taken from ARGV unless given.
local function claim(i, limit)
  local consumer, n = ARGV[i], tonumber(ARGV[i + 2])
  limit = limit or tonumber(ARGV[i + 1])
  local out, running = {}, {}
  for _, pri in ipairs({'1', '0'}) do
    if #out >= limit then break end
    local found = first_ready(pri, i + 3, n, limit - #out)
    if #found > 0 then
      local taken, gone = math.min(#found, limit - #out), {}
      local last = redis.call('INCRBY', P .. ':tok', taken)
      for k = 1, taken do
        local key, m = found[k][3], found[k][2]
        gone[key] = gone[key] or {}
        table.insert(gone[key], m)
        local id = string.sub(m, 18)
        local row, until_at = take(id, consumer, tostring(last - taken + k))
        out[#out + 1] = row
        running[#running + 1] = until_at
        running[#running + 1] = id
      end
      for key, members in pairs(gone) do bulk('ZREM', key, members) end
    end
  end
  if #running > 0 then bulk('ZADD', P .. ':running', running) end
  return out
end

-- After claim(i) took taken jobs: false when it took its limit; else (no ready job is left in its queues) the seconds
-- until their earliest delayed job is due, '' when none is. The consumer's wait for ready jobs that follows
-- needs no look at the engine then (drained.py): one round trip fewer each time a consumer runs out of work.
local function due_after(i, taken)
  if taken >= tonumber(ARGV[i + 1]) then return false end
  local next_at
  for k = i + 3, i + 2 + tonumber(ARGV[i + 2]) do
    for _, pri in ipairs({'1', '0'}) do
      local r = redis.call('ZRANGEBYSCORE', lane(ARGV[k], pri), '(' .. NOWS, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if r[1] and (not next_at or tonumber(r[2]) < next_at) then next_at = tonumber(r[2]) end
    end
  end
  return next_at and num(next_at - NOW) or ''
end

-- The snapshot of a job complete just ended (not dead: requeue_dead may give a dead job another round), told
-- after the finished ids: the listener of the store object waiting for it keeps it, and the waiter takes it
-- instead of reading the job (heard.py): no read, and no round trip between a job's end and its result. It is
-- what infos would read (codec.INFO_FIELDS, in order), each field a frame (codec.frames) after a frame of flags
-- ('1' present, '0' absent); f: what complete read of the job, and its outcome. A large one stays out: its
-- waiters read, as for every other way a job ends. One struct.pack (C): building it field by field in Lua
-- costs several times more.
-- Seventeen frames; spelled out, as the library's top level runs where the string library is not there yet.
local ROW = '<I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0'
local function told_row(id, ttl, f, state, result, etype, emsg, etb)
  if #(result or '') + #(etb or '') + #(emsg or '') > tonumber(ROW_LIMIT) then return end
  local key, flags = f[10], '1111111' .. (f[10] and '1' or '0') .. '111' .. (etype and '111' or '000') .. '1'
  flags = flags .. (result and '1' or '0')
  local name, q, ready_at, d, pri, created, started, consumer = f[6], f[3], f[7], f[8], f[9], f[11], f[12], f[13]
  local row = struct.pack(ROW, 16, flags, #id, id, #name, name, #q, q, #state, state, #ready_at, ready_at, #d, d,
    #pri, pri, #(key or ''), key or '', #created, created, #started, started, #NOWS, NOWS, #(etype or ''),
    etype or '', #(emsg or ''), emsg or '', #(etb or ''), etb or '', #consumer, consumer, #(result or ''),
    result or '')
  ROWS[#ROWS + 1] = struct.pack('<I4c0I4c0I4c0', #id, id, #ttl, ttl, #row, row)
end

-- F: per outcome: id, token, state, has_result, result, has_error, etype, emsg, etb, parts ('' or '*' and the
-- netstrings of a run step's list elements)
local function complete(F)
  local out, gone, kept = {}, {}, {}
  for k = 0, #F / 10 - 1 do
    local b = 1 + k * 10
    local id, state = F[b], F[b + 2]
    -- state, token, queue, ttl, step; then the rest of a snapshot, for told_row
    local f = redis.call('HMGET', jk(id), 'state', 'token', 'queue', 'ttl', 'step', 'name', 'ready_at', 'deliveries',
      'priority', 'key', 'created_at', 'started_at', 'consumer')
    local q, ttl, step = f[3], f[4], f[5]
    if f[1] == 'running' and f[2] == F[b + 1] then
      -- A running job holds no result or error: requeue_dead clears them, and nothing else sets them
      -- before an outcome.
      local result, etype, emsg, etb = nil, nil, nil, nil
      if state == 'succeeded' and F[b + 3] == '1' then
        result = F[b + 4]
        redis.call('HSET', jk(id), 'state', state, 'finished_at', NOWS, 'token', '', 'result', result)
      elseif (state == 'failed' or state == 'dead') and F[b + 5] == '1' then
        etype, emsg, etb = F[b + 6], F[b + 7], F[b + 8]
        redis.call('HSET', jk(id), 'state', state, 'finished_at', NOWS, 'token', '', 'etype', etype, 'emsg', emsg,
          'etb', etb)
      else
        redis.call('HSET', jk(id), 'state', state, 'finished_at', NOWS, 'token', '')
      end
      count(q, 'running', state, 1)
      ended(id, q, state)
      gone[#gone + 1] = id
      if state ~= 'dead' then
        kept[#kept + 1] = num(NOW + tonumber(ttl))
        kept[#kept + 1] = id
        told_row(id, ttl, f, state, result, etype, emsg, etb)
      end
      DONE[#DONE + 1] = id
      out[#out + 1] = 1
      if step then
        local parts = nil
        if F[b + 9] ~= '' then parts = F[b + 9] end
        runs().step_ended(id, step, state, result, parts)
      end
    else
      out[#out + 1] = 0
    end
  end
  if #gone > 0 then bulk('ZREM', P .. ':running', gone) end
  if #kept > 0 then bulk('ZADD', P .. ':finished', kept) end
  return out
end

-- ARGV from i: consumer id, consumer record, n, (id, token) * n
local function renew(i)
  redis.call('HSET', P .. ':consumers', ARGV[i], ARGV[i + 1])
  redis.call('HSET', P .. ':heartbeats', ARGV[i], NOWS)
  local lost, cancelled, running = {}, {}, {}
  for k = 0, tonumber(ARGV[i + 2]) - 1 do
    local id = ARGV[i + 3 + 2 * k]
    local st, tok, lease, cancel = unpack(redis.call('HMGET', jk(id), 'state', 'token', 'lease', 'cancel'))
    if st == 'running' and tok == ARGV[i + 4 + 2 * k] then
      running[#running + 1] = num(NOW + tonumber(lease))
      running[#running + 1] = id
      if cancel == '1' then cancelled[#cancelled + 1] = id end
    else
      lost[#lost + 1] = id
    end
  end
  if #running > 0 then bulk('ZADD', P .. ':running', running) end
  return {lost, cancelled}
end

-- The job held by (id, token) given back: a run cut short when started; else its delivery is taken back, and
-- it keeps its member and ready time: its place. Nothing when the hold is stale.
local function give_back(id, token, started)
  local q = held(id, token)
  if q and started then
    cut_short(id, q)
  elseif q then
    if redis.call('HINCRBY', jk(id), 'deliveries', -1) == 0 then redis.call('HSET', jk(id), 'started_at', '') end
    if redis.call('HGET', jk(id), 'cancel') == '1' then
      finish(id, q, 'running', 'cancelled')
    else
      requeue(id, q, 'running', redis.call('HGET', jk(id), 'ready_at'))
    end
  end
end

-- ARGV from i: started, n, (id, token) * n
local function release(i)
  for k = 0, tonumber(ARGV[i + 1]) - 1 do
    give_back(ARGV[i + 2 + 2 * k], ARGV[i + 3 + 2 * k], ARGV[i] == '1')
  end
  return 0
end

local function cancel(id)
  local st, q, m, pri, consumer = unpack(redis.call('HMGET', jk(id), 'state', 'queue', 'm', 'priority', 'consumer'))
  if not st or FINISHED[st] then return 0 end
  if st == 'running' then
    ask_cancel(id, consumer)
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

-- A run step's dead job stays dead: its run tries again by a resume, which reports one outcome per job.
local function requeue_dead(id)
  local st, q, step = unpack(redis.call('HMGET', jk(id), 'state', 'queue', 'step'))
  if st ~= 'dead' or step then return 0 end
  redis.call('HSET', jk(id), 'deliveries', 0, 'finished_at', '', 'cancel', '0')
  redis.call('HDEL', jk(id), 'etype', 'emsg', 'etb')
  redis.call('ZREM', ended_key(q, 'dead'), id)
  requeue(id, q, 'dead', NOWS)
  return 1
end

-- rules.purgeable: the finished zset holds each finished (not dead) job at finished_at + result_ttl.
-- At most `limit` jobs per call: the server does nothing else while a script runs, so a large backlog of
-- expired results goes in several short scripts (the store calls again while a call is full).
local function purge(limit)
  local ids = redis.call('ZRANGEBYSCORE', P .. ':finished', '-inf', NOWS, 'LIMIT', 0, limit)
  local gone = 0
  for _, id in ipairs(ids) do
    redis.call('ZREM', P .. ':finished', id)
    local st, q, key = unpack(redis.call('HMGET', jk(id), 'state', 'queue', 'key'))
    if st and FINISHED[st] and st ~= 'dead' then
      redis.call('DEL', jk(id))
      redis.call('ZREM', ended_key(q, st), id)
      redis.call('HINCRBY', P .. ':count:' .. q, st, -1)
      if redis.call('HINCRBY', P .. ':queues', q, -1) <= 0 then redis.call('HDEL', P .. ':queues', q) end
      if key and redis.call('HGET', P .. ':keys', key) == id then redis.call('HDEL', P .. ':keys', key) end
      gone = gone + 1
    end
  end
  return {gone, #ids}
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

-- Once per call that changes jobs: apply the count changes, then tell the listeners -- the finished ids
-- in one message (space-separated; then a newline and told_row's snapshots, if any), each queue with new
-- ready jobs once.
local function flush(reply)
  for q, changes in pairs(COUNTS) do
    for state, n in pairs(changes) do
      if n ~= 0 then redis.call('HINCRBY', P .. ':count:' .. q, state, n) end
    end
  end
  for q, n in pairs(HELD) do redis.call('HINCRBY', P .. ':queues', q, n) end
  for key, members in pairs(ENDED) do bulk('ZADD', key, members) end
  if #DONE > 0 then
    local message = table.concat(DONE, ' ')
    if #ROWS > 0 then message = message .. '\n' .. table.concat(ROWS) end
    redis.call('PUBLISH', P .. ':done', message)
  end
  for q in pairs(READY) do redis.call('PUBLISH', P .. ':ready', q) end
  for q in pairs(LATER) do if not READY[q] then redis.call('PUBLISH', P .. ':later', q) end end
  for consumer in pairs(CANCELS) do redis.call('PUBLISH', P .. ':cancel', consumer) end
  for consumer, rows in pairs(HANDED) do
    redis.call('PUBLISH', P .. ':handed-to:' .. consumer, consumer .. '\n' .. table.concat(rows))
  end
  return reply
end
