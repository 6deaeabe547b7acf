-- The whole click decision, atomically: dedup, budget check, charge, counters, ledger append.
-- KEYS: 1 clicked set (impression ids clicked, by issue day)  2 budget hash (daily, total; -1 = none)
--       3 total spend  4 today's spend  5 this hour's stats hash  6 ledger stream
-- ARGV: 1 impression id  2 price fen  3 pre-decided invalid reason or ''  4 ad id  5 publisher id
--       6 now (ms)  7 day  8 hour  9 clicked-set ttl s  10 stats ttl s  11 day-spend ttl s
-- Returns: {charged (0/1), amount fen, reason}
local imp, price, pre = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local ad, pub = ARGV[4], ARGV[5]
local stats = KEYS[5]

local function record(valid, amount, reason)
  if valid then
    redis.call('HINCRBY', stats, 'click', 1)
    redis.call('HINCRBY', stats, 'spend', amount)
    redis.call('HINCRBY', stats, 'a:' .. ad .. ':click', 1)
    redis.call('HINCRBY', stats, 'a:' .. ad .. ':spend', amount)
    redis.call('HINCRBY', stats, 'p:' .. pub .. ':click', 1)
    redis.call('HINCRBY', stats, 'p:' .. pub .. ':spend', amount)
  else
    redis.call('HINCRBY', stats, 'inv:' .. reason, 1)
    redis.call('HINCRBY', stats, 'a:' .. ad .. ':inv', 1)
    redis.call('HINCRBY', stats, 'p:' .. pub .. ':inv:' .. reason, 1)
  end
  redis.call('EXPIRE', stats, ARGV[10])
  redis.call('XADD', KEYS[6], '*', 'imp', imp, 'ad', ad, 'pub', pub, 'amount', amount,
             'reason', reason, 'day', ARGV[7], 'hour', ARGV[8], 'ts', ARGV[6])
  return {valid and 1 or 0, amount, reason}
end

if redis.call('SADD', KEYS[1], imp) == 0 then
  return record(false, 0, 'duplicate')
end
redis.call('EXPIRE', KEYS[1], ARGV[9])
if pre ~= '' then
  return record(false, 0, pre)
end
local budget = redis.call('HMGET', KEYS[2], 'daily', 'total')
if not budget[1] or not budget[2] then
  return record(false, 0, 'budget_exhausted')  -- unknown campaign budget: never charge blindly
end
local daily, total = tonumber(budget[1]), tonumber(budget[2])
local spent_total = tonumber(redis.call('GET', KEYS[3]) or '0')
local spent_day = tonumber(redis.call('GET', KEYS[4]) or '0')
if (total >= 0 and spent_total + price > total) or (daily >= 0 and spent_day + price > daily) then
  return record(false, 0, 'budget_exhausted')
end
redis.call('INCRBY', KEYS[3], price)
redis.call('INCRBY', KEYS[4], price)
redis.call('EXPIRE', KEYS[4], ARGV[11])
return record(true, price, 'valid')
