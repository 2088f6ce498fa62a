-- The hand-off: a job stored while a consumer waits for jobs of its queue is claimed for that consumer by the
-- call that stores it, and its claim row goes to the consumer in a message. The consumer starts it when the
-- message arrives, with no claim of its own: one round trip and one append-only file sync fewer between a
-- job's submission and its start (handed.py tells the Python side).
--
-- A consumer waits after a claim that came up short; such a claim, made by a consumer that waits (offer > 0),
-- leaves an offer: how many more jobs it can start (P:offer, a hash: consumer -> count) and until when the offer
-- stands (P:offers:<queue>, a zset per queue: consumer -> lapse time). Each claim of the consumer replaces it
-- (one with nothing left, or made by a consumer that will not wait, withdraws it), and it lapses on its own if
-- the consumer stops claiming (dies). A job handed is also listed in P:handed:<consumer> ("<id> <token>") until
-- the consumer's next claim collects the list: a message lost (the consumer's listener was reconnecting) costs
-- a wait, never the job. Channel P:handed-to:<consumer>: "<consumer>\n", then each claim row framed (codec.frames).

-- Seconds a consumer's list of handed jobs outlives the last job handed to it (a dead consumer's is dropped).
local HANDED_KEEP = 86400

local function offers(q) return P .. ':offers:' .. q end
local function handed_list(consumer) return P .. ':handed:' .. consumer end

local function ready_in(key)
  return #redis.call('ZRANGEBYSCORE', key, '-inf', NOWS, 'LIMIT', 0, 1) > 0
end

-- The consumer to hand a job of queue q in lane pri to, its offer counted down; false when none is waiting.
-- Never ahead of a job already ready in its lanes (one given back, or due): the order stays the claims' order.
hand = function(q, pri)
  local waiting = redis.call('ZRANGEBYSCORE', offers(q), NOWS, '+inf', 'LIMIT', 0, 8)
  if #waiting == 0 then return false end
  if ready_in(lane(q, '1')) or (pri == '0' and ready_in(lane(q, '0'))) then return false end
  for _, consumer in ipairs(waiting) do
    local left = tonumber(redis.call('HGET', P .. ':offer', consumer) or '0')
    if left > 0 then
      if left == 1 then redis.call('HDEL', P .. ':offer', consumer) else
        redis.call('HSET', P .. ':offer', consumer, left - 1)
      end
      return consumer
    end
    redis.call('ZREM', offers(q), consumer)  -- withdrawn, or used up
  end
  return false
end

local function framed(values)
  local parts = {}
  for k = 1, #values do
    local value = tostring(values[k])
    parts[k] = struct.pack('<I4', #value) .. value
  end
  return table.concat(parts)
end

-- Claim the job just stored for consumer: running under a fresh token, listed, and told by flush.
give = function(id, consumer)
  local tok = tostring(redis.call('INCR', P .. ':tok'))
  local row, until_at = take(id, consumer, tok)
  redis.call('ZADD', P .. ':running', until_at, id)
  local list = handed_list(consumer)
  redis.call('RPUSH', list, id .. ' ' .. tok)
  redis.call('EXPIRE', list, HANDED_KEEP)
  local rows = HANDED[consumer]
  if not rows then rows = {}; HANDED[consumer] = rows end
  rows[#rows + 1] = framed(row)
end

-- The jobs handed to consumer since its last claim: their claim rows, but for those it has heard of (token at
-- most seen: their message reached it) and those no longer held (given back, cancelled, taken back).
local function collect(consumer, seen)
  local list = handed_list(consumer)
  local entries = redis.call('LRANGE', list, 0, -1)
  if #entries == 0 then return {} end
  redis.call('DEL', list)
  local out = {}
  for _, entry in ipairs(entries) do
    local id, tok = string.match(entry, '^(.*) (%d+)$')
    if tonumber(tok) > seen and held(id, tok) then
      local f = redis.call('HMGET', jk(id), unpack(CLAIM_FIELDS))
      out[#out + 1] = claim_row(id, f, f[8], tok)
    end
  end
  return out
end

-- consumer can take room more jobs of queues ARGV[i .. i + n - 1] for ttl seconds (none: the offer goes).
local function offer(consumer, i, n, room, ttl)
  if ttl <= 0 or room <= 0 then
    redis.call('HDEL', P .. ':offer', consumer)  -- its zset members go when hand meets them
    return
  end
  redis.call('HSET', P .. ':offer', consumer, room)
  local until_at = num(NOW + ttl)
  for k = i, i + n - 1 do
    redis.call('ZREMRANGEBYSCORE', offers(ARGV[k]), '-inf', '(' .. NOWS)
    redis.call('ZADD', offers(ARGV[k]), until_at, consumer)
  end
end

-- A consumer's claim. ARGV from i: consumer, limit, n, queue * n, seen, offer: the jobs handed to it that it has
-- not heard of (collected), and ready ones (claimed), limit in all; then its offer of what is left (offer: the
-- seconds it stands, 0 when the consumer will not wait). Only collected rows may also come in a message.
local function claim_waiting(i)
  local consumer, limit, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local seen, ttl = tonumber(ARGV[i + 3 + n]), tonumber(ARGV[i + 4 + n])
  local got = collect(consumer, seen)
  local out = claim(i, math.max(0, limit - #got))
  offer(consumer, i + 3, n, limit - #got - #out, ttl)
  return got, out
end

-- A consumer leaves. ARGV from i: consumer, seen, n, (id, token) * n: the jobs handed to it that it never took
-- (heard of, not claimed yet); with those listed that it never heard of, they go back unstarted.
local function leave(i)
  local consumer, seen = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('HDEL', P .. ':consumers', consumer)
  redis.call('HDEL', P .. ':heartbeats', consumer)
  redis.call('HDEL', P .. ':offer', consumer)
  for k = 0, tonumber(ARGV[i + 2]) - 1 do give_back(ARGV[i + 3 + 2 * k], ARGV[i + 4 + 2 * k], false) end
  local list = handed_list(consumer)
  for _, entry in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local id, tok = string.match(entry, '^(.*) (%d+)$')
    if tonumber(tok) > seen then give_back(id, tok, false) end
  end
  redis.call('DEL', list)
  return 0
end
