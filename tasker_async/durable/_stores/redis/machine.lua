-- The run-state machine of workflow runs, ported from tasker_async/durable/_model/workflow/machine.py (with
-- machine_records.py and machine_requests.py, whose docstrings state the contract): a script cannot call
-- Python, so each transition is here again and must decide exactly as the Python does, effects in the same
-- order. Nothing here touches Redis; runs.lua reads a run, calls a transition, writes what changed.
--
-- G, a run's graph (WF.graph): G.names (definition order), G.plan[name] (parents, map_over or nil, the job
-- options), G.children[name] (definition order). S[name], a step's status: state, left (parents not yet
-- succeeded), items (nil until known), done, failed, attempts, err (nil or {type, message, traceback}).
-- The transitions change S in place (runs.lua keeps what it read, to write only what changed) and return
-- their effects: {'release', step, indices or nil}, {'cancel', steps}, {'ended', run state}.

local WF = {}
local STEP_FINISHED = {succeeded = true, failed = true, upstream_failed = true, cancelled = true}

-- A broken contract (an outcome that cannot be): the script stops, as the Python raises ValueError.
local function broken(message) error('ValueError: ' .. message) end

-- Python's repr of a step name (a Python identifier), for the messages the Python builds.
function WF.repr(name) return "'" .. name .. "'" end

-- plans: plans.plan_text decoded (cjson): [name, parents, map_over, task, queue, priority, max_deliveries,
-- lease, result_ttl] per step.
function WF.graph(plans)
  local g = {names = {}, plan = {}, children = {}}
  for _, p in ipairs(plans) do
    local map_over = p[3]
    if map_over == cjson.null then map_over = nil end
    g.names[#g.names + 1] = p[1]
    g.plan[p[1]] = {name = p[1], parents = p[2], map_over = map_over, task = p[4], queue = p[5],
      priority = p[6], maxd = p[7], lease = p[8], ttl = p[9]}
    g.children[p[1]] = {}
  end
  for _, child in ipairs(g.names) do
    local seen = {}
    for _, parent in ipairs(g.plan[child].parents) do
      if not seen[parent] and g.children[parent] then
        seen[parent] = true
        table.insert(g.children[parent], child)
      end
    end
  end
  return g
end

-- machine_records.run_state
function WF.run_state(G, S)
  local all_succeeded, any_cancelled = true, false
  for _, name in ipairs(G.names) do
    local state = S[name].state
    if not STEP_FINISHED[state] then return 'running' end
    if state ~= 'succeeded' then all_succeeded = false end
    if state == 'cancelled' then any_cancelled = true end
  end
  if all_succeeded then return 'succeeded' end
  if any_cancelled then return 'cancelled' end
  return 'failed'
end

local function items_open(st) return (st.items or 0) - st.done - st.failed end

local function released(S, step)
  local st = S[step]
  if not st then broken('no step ' .. WF.repr(step)) end
  if st.state == 'pending' then
    broken('step ' .. WF.repr(step) .. ' is pending: no job of it was released, so none can start or end')
  end
  return st
end

local function counted(step, st, done, failed)
  if st.items == nil or items_open(st) < done + failed then
    broken('step ' .. WF.repr(step) .. ' got more item outcomes than its ' .. tostring(st.items) .. ' items')
  end
  st.done = st.done + done
  st.failed = st.failed + failed
end

local function check_length(G, step, n)
  for _, child in ipairs(G.children[step]) do
    if G.plan[child].map_over == step and n == nil then
      broken('steps map over ' .. WF.repr(step) .. ': its success needs result_items (its list\'s length)')
    end
  end
  if n ~= nil and n < 0 then broken('result_items must be >= 0, got ' .. n) end
end

-- Only the transition that takes the run out of running tells it ended.
local function ended(G, before, S, effects)
  local state = WF.run_state(G, S)
  if state ~= 'running' and before == 'running' then effects[#effects + 1] = {'ended', state} end
end

-- Count parent done for child; release the child if it was the last. True: it succeeds at once.
local function parent_succeeded(G, S, child, parent, length, effects)
  local st = S[child]
  if st.state ~= 'pending' and st.state ~= 'upstream_failed' then return false end
  local mapped = G.plan[child].map_over
  local items = st.items
  if mapped == parent then items = length end
  st.left = st.left - 1
  st.items = items
  if st.state ~= 'pending' or st.left > 0 then return false end
  if mapped ~= nil and items == 0 then return true end
  st.state = 'ready'
  local indices = nil
  if mapped ~= nil then
    indices = {}
    for i = 0, (items or 0) - 1 do indices[#indices + 1] = i end
  end
  effects[#effects + 1] = {'release', child, indices}
  return false
end

-- Breadth-first with a queue: a chain of mapped steps over empty lists succeeds in one go.
local function succeed(G, S, step, length, effects)
  local todo, head = {{step, length}}, 1
  while head <= #todo do
    local name, n = todo[head][1], todo[head][2]
    head = head + 1
    S[name].state = 'succeeded'
    for _, child in ipairs(G.children[name]) do
      if parent_succeeded(G, S, child, name, n, effects) then todo[#todo + 1] = {child, 0} end
    end
  end
end

-- machine.item_succeeded; n: the result's length (result_items) or nil.
function WF.item_succeeded(G, S, step, n)
  local before = WF.run_state(G, S)
  local st = released(S, step)
  if G.plan[step].map_over ~= nil then
    if n ~= nil then broken('step ' .. WF.repr(step) .. ' is mapped: its list is as long as its items') end
    counted(step, st, 1, 0)
    if STEP_FINISHED[st.state] or st.done < (st.items or 0) then return {} end
    n = st.items
  else
    if STEP_FINISHED[st.state] then return {} end
    check_length(G, step, n)
  end
  local effects = {}
  succeed(G, S, step, n, effects)
  ended(G, before, S, effects)
  return effects
end

-- The steps below name, in definition order.
local function descendants(G, name)
  local found, todo = {}, {}
  for _, child in ipairs(G.children[name]) do todo[#todo + 1] = child end
  while #todo > 0 do
    local step = table.remove(todo)
    if not found[step] then
      found[step] = true
      for _, child in ipairs(G.children[step]) do todo[#todo + 1] = child end
    end
  end
  local out = {}
  for _, step in ipairs(G.names) do if found[step] then out[#out + 1] = step end end
  return out
end

-- machine.item_failed (and item_cancelled, with its error): err = {type, message, traceback}.
function WF.item_failed(G, S, step, err)
  local before = WF.run_state(G, S)
  local st = released(S, step)
  if G.plan[step].map_over ~= nil then counted(step, st, 0, 1) end
  if STEP_FINISHED[st.state] then return {} end
  st.state = 'failed'
  st.err = err
  for _, name in ipairs(descendants(G, step)) do
    if S[name].state == 'pending' then S[name].state = 'upstream_failed' end
  end
  local effects = {}
  ended(G, before, S, effects)
  return effects
end

-- machine_requests.cancel_run
function WF.cancel_run(G, S)
  local stopping = {}
  for _, name in ipairs(G.names) do
    local st = S[name]
    local in_flight = G.plan[name].map_over ~= nil and st.state == 'failed' and items_open(st) > 0
    if st.state == 'ready' or st.state == 'running' or in_flight then stopping[#stopping + 1] = name end
  end
  local effects = {}
  if #stopping > 0 then effects[1] = {'cancel', stopping} end
  if WF.run_state(G, S) == 'running' then
    for _, name in ipairs(G.names) do
      if not STEP_FINISHED[S[name].state] then S[name].state = 'cancelled' end
    end
    effects[#effects + 1] = {'ended', 'cancelled'}
  end
  return effects
end

-- failed_items: for each failed mapped step, the indices of its failed items (any order); checked.
local function items_again(G, S, failed_items)
  local again = {}
  for _, name in ipairs(G.names) do
    local failed = G.plan[name].map_over ~= nil and S[name].state == 'failed'
    if failed ~= (failed_items[name] ~= nil) then broken('failed_items must name exactly the failed mapped steps') end
    if failed then
      local st, indices, seen = S[name], {}, {}
      for _, i in ipairs(failed_items[name]) do
        if i < 0 or i >= (st.items or 0) or seen[i] then broken('step ' .. WF.repr(name) .. ': bad failed items') end
        seen[i] = true
        indices[#indices + 1] = i
      end
      if #indices ~= st.failed then broken('step ' .. WF.repr(name) .. ': bad failed items') end
      table.sort(indices)
      again[name] = indices
    end
  end
  return again
end

-- machine_requests.resume
function WF.resume(G, S, failed_items)
  if WF.run_state(G, S) ~= 'failed' then return {} end
  local again = items_again(G, S, failed_items)
  local was = {}
  for _, name in ipairs(G.names) do was[name] = S[name].state end
  local effects = {}
  for _, name in ipairs(G.names) do
    local st, plan = S[name], G.plan[name]
    if was[name] == 'failed' then
      st.state, st.failed, st.err = 'ready', 0, nil
      effects[#effects + 1] = {'release', name, again[name]}
    elseif was[name] == 'upstream_failed' then
      local left = 0
      for _, parent in ipairs(plan.parents) do if was[parent] ~= 'succeeded' then left = left + 1 end end
      st.state, st.left = 'pending', left
      if not (plan.map_over ~= nil and was[plan.map_over] == 'succeeded') then st.items = nil end
    end
  end
  return effects
end
