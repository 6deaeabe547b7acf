-- The whole click decision, atomically: dedup, budget check, charge, counters, ledger append.
-- Only a charged click uses up its impression (joins the clicked set): an invalid click before it
-- (a crawler, a too-fast or rate-limited click) never stops the reader's own click from counting.
-- Invalid clicks are counted per impression and reason; only the first of each reason on an
-- impression is appended to the ledger (and counted as inv:<reason>), later ones are counted only
-- (rep:<reason>), so replaying one click URL cannot grow the ledger.
-- Ledger entries are hash-chained by ledger_append (ledger_chain.lua, prepended with sha256.lua
-- at registration by service.billing.chain.with_chain).
-- KEYS: 1 clicked set (impression ids charged, by issue day)  2 budget hash (daily, total; -1 = none)
--       3 total spend  4 today's spend  5 this hour's stats hash  6 ledger stream
--       7 invalid-click counts hash (field '<impression id>|<reason>', by issue day)
--       8 ledger chain head hash  9 the click's record for conversions
--       10 the campaign's conversion-rate counts hash
-- ARGV: 1 impression id  2 price fen (0 for a CPA ad: its clicks are free)  3 pre-decided invalid
--       reason or ''  4 ad id  5 publisher id  6 now (ms)  7 day  8 hour
--       9 clicked-set and invalid-counts ttl s  10 stats ttl s  11 day-spend ttl s  12 campaign id
--       13 matched keyword ('' none)  14 page category ('' none)  15 advertiser id
--       16 CPA event ('' = CPC)  17 CPA price fen per conversion  18 click-record ttl s
-- Returns: {charged (0/1), amount fen, reason, times this impression got this reason (1 if valid)}
local imp, price, pre = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local ad, pub = ARGV[4], ARGV[5]
local kw, cat = ARGV[13], ARGV[14]
local stats = KEYS[5]

-- what a conversion needs to know of this click (valid: 1, or 0 for an invalid one)
local function remember(v)
  redis.call('HSET', KEYS[9], 'v', v, 't', ARGV[6], 'ad', ad, 'pub', pub, 'adv', ARGV[15],
             'kw', kw, 'cat', cat, 'cpa', ARGV[16], 'price', ARGV[17])
  redis.call('EXPIRE', KEYS[9], ARGV[18])
end

local function append(amount, reason)
  -- fields in ascending name order, as ledger_append requires
  ledger_append(KEYS[6], KEYS[8], ARGV[12], ARGV[7], {'ad', ad, 'amount', amount, 'day', ARGV[7],
                'hour', ARGV[8], 'imp', imp, 'pub', pub, 'reason', reason, 'ts', ARGV[6]})
end

local function valid(amount)
  redis.call('HINCRBY', stats, 'click', 1)
  redis.call('HINCRBY', stats, 'spend', amount)
  redis.call('HINCRBY', stats, 'a:' .. ad .. ':click', 1)
  redis.call('HINCRBY', stats, 'a:' .. ad .. ':spend', amount)
  redis.call('HINCRBY', stats, 'p:' .. pub .. ':click', 1)
  redis.call('HINCRBY', stats, 'p:' .. pub .. ':spend', amount)
  if kw ~= '' then
    redis.call('HINCRBY', stats, 'k:' .. kw .. ':click', 1)
    redis.call('HINCRBY', stats, 'k:' .. kw .. ':spend', amount)
  end
  if cat ~= '' then
    redis.call('HINCRBY', stats, 'g:' .. cat .. ':click', 1)
    redis.call('HINCRBY', stats, 'g:' .. cat .. ':spend', amount)
  end
  redis.call('EXPIRE', stats, ARGV[10])
  redis.call('HINCRBY', KEYS[10], 'click', 1)
  redis.call('HINCRBY', KEYS[10], 'a:' .. ad .. ':click', 1)
  remember(1)
  append(amount, 'valid')
  return {1, amount, 'valid', 1}
end

local function invalid(reason)
  local n = redis.call('HINCRBY', KEYS[7], imp .. '|' .. reason, 1)
  -- first of this reason on this impression: in the ledger; a repeat: counted only
  local kind = 'rep:'
  if n == 1 then
    redis.call('EXPIRE', KEYS[7], ARGV[9])
    kind = 'inv:'
  end
  redis.call('HINCRBY', stats, kind .. reason, 1)
  redis.call('HINCRBY', stats, 'a:' .. ad .. ':inv', 1)
  redis.call('HINCRBY', stats, 'p:' .. pub .. ':' .. kind .. reason, 1)
  redis.call('EXPIRE', stats, ARGV[10])
  if n == 1 then
    append(0, reason)
  end
  if redis.call('EXISTS', KEYS[9]) == 0 then  -- never over the impression's valid click
    remember(0)
  end
  return {0, 0, reason, n}
end

if redis.call('SISMEMBER', KEYS[1], imp) == 1 then
  return invalid('duplicate')
end
if pre ~= '' then
  return invalid(pre)
end
local budget = redis.call('HMGET', KEYS[2], 'daily', 'total')
if not budget[1] or not budget[2] then
  return invalid('budget_exhausted')  -- unknown campaign budget: never charge blindly
end
local daily, total = tonumber(budget[1]), tonumber(budget[2])
local spent_total = tonumber(redis.call('GET', KEYS[3]) or '0')
local spent_day = tonumber(redis.call('GET', KEYS[4]) or '0')
if (total >= 0 and spent_total + price > total) or (daily >= 0 and spent_day + price > daily) then
  return invalid('budget_exhausted')
end
redis.call('INCRBY', KEYS[3], price)
redis.call('INCRBY', KEYS[4], price)
redis.call('EXPIRE', KEYS[4], ARGV[11])
redis.call('SADD', KEYS[1], imp)
redis.call('EXPIRE', KEYS[1], ARGV[9])
return valid(price)
