-- Workflow runs on Redis: the glue of tasker_async/durable/_stores/runs/apply.py over keys, around the state
-- machine of machine.lua. Part of load_runs (see jobs.lua) in every script that can finish a job, so a step
-- job's outcome goes to its run in the same script as the job's change (jobs.lua calls step_ended).
--
-- Keys of run R (P:run:<id>): R (hash: id, workflow, key, state, inputs, plans (plans.plan_text), created_at,
-- finished_at, ttl), R:st (hash: step -> its status as netstrings: state, parents left, items ('' unknown),
-- done, failed, attempts, then the error's type, message, traceback when it has one), R:t (hash: 's:<step>'
-- first start, 'f:<step>' finish), R:r (hash: step -> result, for a step that is not mapped), R:i:<step>
-- (hash: 's<i>' item state, 'v<i>' its encoded value: a mapped step's item results, or the elements of a
-- list some step maps over), R:live (set: the run's unfinished job ids). P:runkeys (hash: key -> run id),
-- P:runs:done (zset: each succeeded or cancelled run by the time it may be purged), P:runs:in:<state> (zset per
-- run state: run id by created_at, what the listing reads newest first), P:sjob (counter: a released step
-- job's id is '<run id>.<n>'). A step job's hash holds 'step': netstrings of its run id, step
-- and item ('' when not mapped).

local function rk(id) return P .. ':run:' .. id end

-- The run (created at created_at) moves from state from (nil for a new run) to state to, in the listing's index.
local function listed(id, created_at, from, to)
  if from then redis.call('ZREM', P .. ':runs:in:' .. from, id) end
  redis.call('ZADD', P .. ':runs:in:' .. to, created_at, id)
end

-- values as netstrings, one after the other (fields reads them back)
local function ns(values)
  local out = {}
  for k = 1, #values do out[k] = #values[k] .. ':' .. values[k] end
  return table.concat(out)
end

local GRAPHS = {}  -- run id -> its graph, decoded once per script

local function load_run(id)
  local state, plans, workflow, ttl, created_at = unpack(redis.call('HMGET', rk(id), 'state', 'plans', 'workflow',
    'ttl', 'created_at'))
  if not state then return nil end
  if not GRAPHS[id] then GRAPHS[id] = WF.graph(cjson.decode(plans)) end
  return {id = id, state = state, workflow = workflow, ttl = ttl, created_at = created_at, G = GRAPHS[id]}
end

-- The runs this script started, resumed or ended: kind, run id, workflow, at per event (RunTable.told); the
-- script returns them with its reply, and the store object keeps them for take_run_events.
local RUN_EVENTS = {}

local function told(kind, id, workflow)
  for _, v in ipairs({kind, id, workflow, NOWS}) do RUN_EVENTS[#RUN_EVENTS + 1] = v end
end

local function encode(st)
  local v = {st.state, tostring(st.left), st.items and tostring(st.items) or '', tostring(st.done),
    tostring(st.failed), tostring(st.attempts)}
  if st.err then v[7], v[8], v[9] = st.err[1], st.err[2], st.err[3] end
  return ns(v)
end

-- Every step's status, and each one's stored encoding (to write only what a transition changed).
local function statuses(run)
  local S, enc = {}, {}
  local flat = redis.call('HGETALL', rk(run.id) .. ':st')
  for k = 1, #flat, 2 do
    local f = fields(flat[k + 1])
    local err = nil
    if f[7] then err = {f[7], f[8], f[9]} end
    S[flat[k]] = {state = f[1], left = tonumber(f[2]), items = tonumber(f[3]), done = tonumber(f[4]),
      failed = tonumber(f[5]), attempts = tonumber(f[6]), err = err}
    enc[flat[k]] = flat[k + 1]
  end
  return S, enc
end

-- RunTable.set_statuses for the changed ones: a step that becomes finished finishes now, one released again not.
local function save(run, S, enc)
  local R, changed = rk(run.id), {}
  for _, name in ipairs(run.G.names) do
    local e = encode(S[name])
    if e ~= enc[name] then
      changed[#changed + 1] = name
      changed[#changed + 1] = e
      if STEP_FINISHED[S[name].state] then
        redis.call('HSETNX', R .. ':t', 'f:' .. name, NOWS)
      else
        redis.call('HDEL', R .. ':t', 'f:' .. name)
      end
    end
  end
  if #changed > 0 then bulk('HSET', R .. ':st', changed) end
end

-- RunTable.set_items: values[i] = {state, value or nil}
local function set_items(id, step, indices, state, values)
  local key, sets, gone = rk(id) .. ':i:' .. step, {}, {}
  for k, i in ipairs(indices) do
    sets[#sets + 1] = 's' .. i
    sets[#sets + 1] = state
    local value = values and values[k]
    if value then
      sets[#sets + 1] = 'v' .. i
      sets[#sets + 1] = value
    else
      gone[#gone + 1] = 'v' .. i
    end
  end
  if #sets > 0 then bulk('HSET', key, sets) end
  if #gone > 0 then bulk('HDEL', key, gone) end
end

-- RunTable.items: the sorted indices, each one's state and value ('' when none).
local function items(id, step)
  local flat, state, value, indices = redis.call('HGETALL', rk(id) .. ':i:' .. step), {}, {}, {}
  for k = 1, #flat, 2 do
    local kind, i = string.sub(flat[k], 1, 1), tonumber(string.sub(flat[k], 2))
    if kind == 's' then
      state[i] = flat[k + 1]
      indices[#indices + 1] = i
    else
      value[i] = flat[k + 1]
    end
  end
  table.sort(indices)
  return indices, state, value
end

-- A parent's result as a step job's payload frames it: '=' and the result, or '*' and its items' results.
local function framed_result(run, step)
  if run.G.plan[step].map_over == nil then
    return '=' .. (redis.call('HGET', rk(run.id) .. ':r', step) or '')
  end
  local indices, _, value = items(run.id, step)
  local out = {}
  for k, i in ipairs(indices) do out[k] = value[i] or '' end
  return '*' .. ns(out)
end

local function fmt(x) return string.format('%.17g', x) end

-- Enqueue step jobs: F, 12 fields per job (see enqueue in jobs.lua), refs: each one's 'step' netstrings.
local function enqueue_steps(run_id, F, refs)
  local n = #refs
  local last = redis.call('INCRBY', P .. ':seq', n)
  local lanes, ids = {}, {}
  for k = 0, n - 1 do
    local id = enqueue(F, 1 + 12 * k, last - n + 1 + k, lanes)
    redis.call('HSET', jk(id), 'step', refs[k + 1])
    ids[#ids + 1] = id
  end
  for l, members in pairs(lanes) do bulk('ZADD', l, members) end
  if n > 0 then bulk('SADD', rk(run_id) .. ':live', ids) end
end

-- apply._release with plans.step_jobs: the payload as payload.StepCall.pack builds it.
local function release_step(run, step, indices)
  local plan = run.G.plan[step]
  local tail = {}
  for _, parent in ipairs(plan.parents) do
    if parent ~= plan.map_over then
      tail[#tail + 1] = parent
      tail[#tail + 1] = framed_result(run, parent)
    end
  end
  local values = nil
  if indices then
    local _, state
    _, state, values = items(run.id, plan.map_over)
    for _, i in ipairs(indices) do if not state[i] then broken('no item ' .. i .. ' to map over') end end
    set_items(run.id, step, indices, 'queued', nil)
  end
  local inputs = redis.call('HGET', rk(run.id), 'inputs')
  local last = redis.call('INCRBY', P .. ':sjob', indices and #indices or 1)
  local F, refs, prio = {}, {}, plan.priority and '1' or '0'
  for k, i in ipairs(indices or {false}) do
    local index, value = '', ''
    if i then index, value = tostring(i), '=' .. (values[i] or '') end
    local head = {STEP_MARKER, run.id, step, index, inputs, value}
    for _, v in ipairs(tail) do head[#head + 1] = v end
    local id = run.id .. '.' .. (last - (indices and #indices or 1) + k)
    for _, v in ipairs({id, plan.task, plan.queue, ns(head), prio, '0', '', '0', '0',
        string.format('%d', plan.maxd), fmt(plan.lease), fmt(plan.ttl)}) do F[#F + 1] = v end
    refs[k] = ns({run.id, step, index})
  end
  enqueue_steps(run.id, F, refs)
end

-- RunTable.stop_jobs: end the queued jobs of steps (unreported: the caller reports them), flag the running.
local function stop_jobs(run_id, steps)
  local wanted, stopped = {}, {}
  for _, step in ipairs(steps) do wanted[step] = true end
  local ids = redis.call('SMEMBERS', rk(run_id) .. ':live')
  table.sort(ids)
  for _, id in ipairs(ids) do
    local st, q, m, pri, ref, d, consumer = unpack(redis.call('HMGET', jk(id), 'state', 'queue', 'm', 'priority',
      'step', 'deliveries', 'consumer'))
    local f = ref and fields(ref)
    if f and wanted[f[2]] then
      if st == 'running' then
        ask_cancel(id, consumer)
      elseif st == 'queued' then
        redis.call('ZREM', lane(q, pri), m)
        finish(id, q, st, 'cancelled', true)
        stopped[#stopped + 1] = {f, tonumber(d)}
      end
    end
  end
  return stopped
end

local outcome

local function carry_out(run, effects)
  for _, effect in ipairs(effects) do
    if effect[1] == 'release' then
      release_step(run, effect[2], effect[3])
    elseif effect[1] == 'cancel' then
      -- Queued jobs end here: their outcomes go to the run like any other (counted items, a resume needs).
      for _, s in ipairs(stop_jobs(run.id, effect[2])) do
        outcome(s[1], 'cancelled', {deliveries = s[2]})
      end
    else
      redis.call('HSET', rk(run.id), 'state', effect[2], 'finished_at', NOWS)
      -- Only a running run ends (machine.lua's ended).
      listed(run.id, run.created_at, 'running', effect[2])
      -- plans.run_purgeable: a succeeded or cancelled run goes after its result_ttl, a failed one stays.
      if effect[2] ~= 'failed' then redis.call('ZADD', P .. ':runs:done', num(NOW + tonumber(run.ttl)), run.id) end
      told(effect[2], run.id, run.workflow)
      DONE[#DONE + 1] = run.id  -- the run's end wakes its waiters, as a finished job's id does
    end
  end
end

local function step_started(id, step, at)
  local key = rk(id) .. ':t'
  local known = redis.call('HGET', key, 's:' .. step)
  if not known or tonumber(at) < tonumber(known) then redis.call('HSET', key, 's:' .. step, at) end
end

local function maps_over(G, step)
  for _, child in ipairs(G.children[step]) do if G.plan[child].map_over == step then return true end end
  return false
end

-- apply.outcome. ref: the job's 'step' netstrings, read (run id, step, item); o: deliveries, and when known
-- started_at, result, parts (a list), err ({type, message, traceback}).
outcome = function(ref, state, o)
  local run = load_run(ref[1])
  if not run then return end
  local step, item, G = ref[2], tonumber(ref[3]), run.G
  if o.started_at then step_started(run.id, step, o.started_at) end
  local S, enc = statuses(run)
  local mapped, err, effects = G.plan[step].map_over ~= nil, o.err, nil
  if state == 'succeeded' and not mapped and maps_over(G, step) and o.parts == nil then
    state, err = 'failed', {TYPE_ERROR, 'step ' .. WF.repr(step) .. ' is mapped over, so its result must be a list', ''}
  end
  if state == 'succeeded' then
    if mapped and item then
      set_items(run.id, step, {item}, 'succeeded', {o.result})
      effects = WF.item_succeeded(G, S, step, nil)
    else
      redis.call('HSET', rk(run.id) .. ':r', step, o.result or '')
      local n = nil
      if o.parts then
        local indices = {}
        for k = 1, #o.parts do indices[k] = k - 1 end
        set_items(run.id, step, indices, 'succeeded', o.parts)
        n = #o.parts
      end
      effects = WF.item_succeeded(G, S, step, n)
    end
  else
    if mapped and item then set_items(run.id, step, {item}, 'failed', nil) end
    if state == 'cancelled' then
      err = {CANCELLED_TYPE, 'the job of step ' .. WF.repr(step) .. ' was cancelled', ''}
    elseif not err then
      err = {RUNTIME_ERROR, 'step ' .. WF.repr(step) .. ' failed', ''}
    end
    effects = WF.item_failed(G, S, step, err)
  end
  S[step].attempts = S[step].attempts + o.deliveries
  save(run, S, enc)
  carry_out(run, effects)
end

-- A step job finished (jobs.lua): it leaves its run's live jobs; unless quiet, its outcome goes to the run.
-- result: a succeeded job's result; parts: the netstrings of its list's elements ('*' first), or nil.
local function step_ended(id, ref, state, result, parts, quiet)
  local f = fields(ref)
  redis.call('SREM', rk(f[1]) .. ':live', id)
  if quiet then return end
  local d, started, etype, emsg, etb = unpack(redis.call('HMGET', jk(id), 'deliveries', 'started_at', 'etype',
    'emsg', 'etb'))
  local err = nil
  if etype and (state == 'failed' or state == 'dead') then err = {etype, emsg, etb} end
  if started == '' then started = nil end
  if parts then parts = fields(string.sub(parts, 2)) end
  outcome(f, state, {deliveries = tonumber(d), started_at = started, result = result, parts = parts, err = err})
end
