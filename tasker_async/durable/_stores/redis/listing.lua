-- The listing reads (finished_jobs, recent_runs) over their indexes: P:ended:<state>:<queue> (jobs.lua) and
-- P:runs:in:<state> (runs.lua), sorted sets scored by finished_at and created_at. scripts.py appends this
-- file to the listing scripts only: the scripts that change jobs stay as they are.
--
-- The order is newest first, then by id (listing.py's newest_jobs and newest_runs). A sorted set keeps the
-- members of one score in byte order, which is the ids' order: so the newest `limit` of one set are read
-- exactly, ties at the cut included, in O(log n + limit).

-- The newest limit entries of key, added to found as {score, id, key}: the ones above the cut's score, then
-- the smallest ids of those at it (ZREVRANGE gave the largest).
local function newest_of(key, limit, found)
  local top = redis.call('ZREVRANGE', key, 0, limit - 1, 'WITHSCORES')
  if #top == 0 then return end
  local cut, above = top[#top], 0
  for j = 1, #top, 2 do
    if top[j + 1] ~= cut then
      found[#found + 1] = {tonumber(top[j + 1]), top[j], key}
      above = above + 1
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, cut, cut, 'LIMIT', 0, limit - above)) do
    found[#found + 1] = {tonumber(cut), id, key}
  end
end

local function newest_first(a, b) return a[1] > b[1] or (a[1] == b[1] and a[2] < b[2]) end

-- Up to limit entries of keys (key -> the state it indexes), newest first, each with what look(id, state)
-- returns: an entry whose look is nil (its job or run is gone, or it left that state) is dropped from its
-- index, and the read starts again without it. {id, look} each.
local function listing(keys, limit, look)
  while true do
    local found = {}
    for key in pairs(keys) do newest_of(key, limit, found) end
    table.sort(found, newest_first)
    local out, stale = {}, false
    for _, entry in ipairs(found) do
      if #out >= limit then break end
      local seen = look(entry[2], keys[entry[3]])
      if seen then
        out[#out + 1] = {entry[2], seen}
      else
        redis.call('ZREM', entry[3], entry[2])
        stale = true
      end
    end
    if not stale or #out >= limit then return out end
  end
end

-- ARGV: limit, has_queue ('1' or '0'), queue, the fields to read (codec.INFO_FIELDS, space-separated), then the
-- finished states. The jobs' fields, newest first, and the time of the read: {NOWS, rows}.
local function finished_jobs()
  local limit, f, keys, at = tonumber(ARGV[2]), {}, {}, nil
  for w in string.gmatch(ARGV[5], '%S+') do
    f[#f + 1] = w
    if w == 'state' then at = #f end
  end
  local queues = {ARGV[4]}
  if ARGV[3] == '0' then queues = redis.call('HKEYS', P .. ':queues') end
  for k = 6, #ARGV do
    for _, q in ipairs(queues) do keys[P .. ':ended:' .. ARGV[k] .. ':' .. q] = ARGV[k] end
  end
  -- A job listed under a state it has left (or gone: no state) is stale.
  local function look(id, state)
    local row = redis.call('HMGET', jk(id), unpack(f))
    if row[at] == state then return row end
    return nil
  end
  local rows = {}
  for _, entry in ipairs(listing(keys, limit, look)) do rows[#rows + 1] = entry[2] end
  return {NOWS, rows}
end

-- ARGV: limit, then the run states. Each run's run_look (no results), newest first: {id, look} each.
local function recent_runs()
  local keys = {}
  for k = 3, #ARGV do keys[P .. ':runs:in:' .. ARGV[k]] = ARGV[k] end
  local function look(id, state)
    local seen = runs().run_look(id, '0')
    if seen[1] and seen[1][3] == state then return seen end
    return nil
  end
  return listing(keys, tonumber(ARGV[2]), look)
end
