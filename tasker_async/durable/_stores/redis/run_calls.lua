-- The run operations of RedisStore (start_run, cancel_run, resume_run, run_look), over runs.lua: each is one
-- script, so each is atomic with the jobs it enqueues or stops.

-- plans.run_key_in_use: running or failed (resumable), or finished within its result_ttl.
local function run_key_holder(key)
  local holder = redis.call('HGET', P .. ':runkeys', key)
  if not holder then return false end
  local st, fin, ttl = unpack(redis.call('HMGET', rk(holder), 'state', 'finished_at', 'ttl'))
  if not st then return false end
  if st == 'running' or st == 'failed' or fin == '' or NOW - tonumber(fin) < tonumber(ttl) then return holder end
  return false
end

-- apply.start. head: id, workflow, has_key, key, inputs, plans, result_ttl; statuses: name and encoded status
-- per step (machine.start's, which the store computed: it depends on nothing stored); jobs: the roots' jobs,
-- 13 frames each: its 12 fields (see enqueue in jobs.lua), then its 'step' netstrings.
local function start_run(head, statuses, jobs)
  local id, workflow, has_key, key, inputs, plans, ttl = unpack(head)
  if has_key == '1' then
    local holder = run_key_holder(key)
    if holder then return holder end
  end
  if redis.call('EXISTS', rk(id)) == 1 then return id end
  redis.call('HSET', rk(id), 'id', id, 'workflow', workflow, 'state', 'running', 'inputs', inputs, 'plans', plans,
    'created_at', NOWS, 'finished_at', '', 'ttl', ttl)
  if has_key == '1' then
    redis.call('HSET', rk(id), 'key', key)
    redis.call('HSET', P .. ':runkeys', key, id)
  end
  bulk('HSET', rk(id) .. ':st', statuses)
  listed(id, NOWS, nil, 'running')
  told('started', id, workflow)
  local F, refs = {}, {}
  for k = 0, #jobs / 13 - 1 do
    for j = 1, 12 do F[#F + 1] = jobs[13 * k + j] end
    refs[#refs + 1] = jobs[13 * k + 13]
  end
  enqueue_steps(id, F, refs)
  return id
end

-- apply.cancel: 1 if the run was running, 0 if it had finished or is unknown.
local function cancel_run(id)
  local run = load_run(id)
  if not run then return 0 end
  local S, enc = statuses(run)
  local effects = WF.cancel_run(run.G, S)
  save(run, S, enc)
  carry_out(run, effects)
  if run.state == 'running' then return 1 end
  return 0
end

-- apply.resume: 1 if resumed, 0 if the run is not failed, -1 if it is unknown.
local function resume_run(id)
  local run = load_run(id)
  if not run then return -1 end
  if run.state ~= 'failed' then return 0 end
  local S, enc = statuses(run)
  local failed_items = {}
  for _, name in ipairs(run.G.names) do
    if run.G.plan[name].map_over ~= nil and S[name].state == 'failed' then
      local indices, state = items(id, name)
      local failed = {}
      for _, i in ipairs(indices) do if state[i] == 'failed' then failed[#failed + 1] = i end end
      failed_items[name] = failed
    end
  end
  local effects = WF.resume(run.G, S, failed_items)
  redis.call('HSET', rk(id), 'state', 'running', 'finished_at', '')
  listed(id, run.created_at, 'failed', 'running')
  save(run, S, enc)
  told('started', id, run.workflow)
  carry_out(run, effects)
  return 1
end

-- What a snapshot of the run reads, in one look: the run's fields, statuses, step times, its live jobs
-- (state, step netstrings, deliveries, started_at each); once it finished and with_results, the results
-- of its steps that are not mapped and the items of those that are. {} if the run is unknown.
local function run_look(id, with_results)
  local R = rk(id)
  local row = redis.call('HMGET', R, 'workflow', 'key', 'state', 'inputs', 'plans', 'created_at', 'finished_at',
    'ttl')
  if not row[3] then return {} end
  local live = {}
  for _, job in ipairs(redis.call('SMEMBERS', R .. ':live')) do
    live[#live + 1] = redis.call('HMGET', jk(job), 'state', 'step', 'deliveries', 'started_at')
  end
  local results, mapped = {}, {}
  if with_results == '1' and row[3] ~= 'running' then
    results = redis.call('HGETALL', R .. ':r')
    for _, name in ipairs(load_run(id).G.names) do
      if GRAPHS[id].plan[name].map_over ~= nil then
        mapped[#mapped + 1] = name
        mapped[#mapped + 1] = redis.call('HGETALL', R .. ':i:' .. name)
      end
    end
  end
  return {row, redis.call('HGETALL', R .. ':st'), redis.call('HGETALL', R .. ':t'), live, results, mapped}
end

-- plans.run_purgeable, by the P:runs:done zset (a finished run's finished_at never changes): delete up to
-- limit runs (their jobs go by their own result_ttl); how many it looked at.
local function purge_runs(limit)
  local ids = redis.call('ZRANGEBYSCORE', P .. ':runs:done', '-inf', NOWS, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', P .. ':runs:done', id)
    local R = rk(id)
    local st, key, plans = unpack(redis.call('HMGET', R, 'state', 'key', 'plans'))
    if st == 'succeeded' or st == 'cancelled' then
      local doomed = {R, R .. ':st', R .. ':t', R .. ':r', R .. ':live'}
      for _, plan in ipairs(cjson.decode(plans)) do doomed[#doomed + 1] = R .. ':i:' .. plan[1] end
      redis.call('DEL', unpack(doomed))
      redis.call('ZREM', P .. ':runs:in:' .. st, id)
      if key and redis.call('HGET', P .. ':runkeys', key) == id then redis.call('HDEL', P .. ':runkeys', key) end
    end
  end
  return #ids
end

-- The end of load_runs (see jobs.lua): what the scripts call.
return {step_ended = step_ended, start_run = start_run, cancel_run = cancel_run, resume_run = resume_run,
  run_look = run_look, purge_runs = purge_runs, events = RUN_EVENTS}
