-- One conversion on one campaign's click, atomically: attribution checks, idempotency by order,
-- counters, and for a click bought per conversion of this event the CPA charge within budgets and
-- its ledger entry. Every conversion, counted or not, goes to the campaign's conversions stream.
-- The ledger entry is hash-chained by ledger_append exactly as click.lua's (ledger_chain.lua,
-- prepended with sha256.lua at registration by service.billing.chain.with_chain), so click and
-- conversion charges form one chain per campaign.
-- KEYS: 1 the click's record  2 orders hash  3 budget hash (daily, total; -1 = none)  4 total spend
--       5 today's spend  6 this hour's stats hash  7 ledger stream  8 conversion-rate counts hash
--       9 conversions stream  10 ledger chain head hash
-- ARGV: 1 impression id  2 event  3 value fen  4 order key (order id, or click:<imp>:<event>)
--       5 order id as sent ('' none)  6 now (ms)  7 attribution window (ms)  8 day  9 hour
--       10 stats ttl s  11 day-spend ttl s  12 the sender's advertiser id ('' = the pixel)
--       13 pre-decided reason ('' or duplicate_order)  14 conversions stream length kept
--       15 campaign id
-- Returns: {counted (0/1), amount charged fen, reason, billing, ad id}; billing is
--   cpc (a per-click ad: nothing to charge), charged, budget_exhausted, other_event (a CPA click
--   bought for another event), or '' when not counted. unknown_click and other_advertiser leave
--   no trace here (the caller records them outside this campaign).
local imp, event, value = ARGV[1], ARGV[2], tonumber(ARGV[3])
local rec = redis.call('HMGET', KEYS[1], 'v', 't', 'ad', 'pub', 'adv', 'kw', 'cat', 'cpa', 'price')
if not rec[1] then
  return {0, 0, 'unknown_click', '', ''}
end
if ARGV[12] ~= '' and ARGV[12] ~= rec[5] then
  return {0, 0, 'other_advertiser', '', ''}
end
local ad, pub, kw, cat, cpa = rec[3], rec[4], rec[6], rec[7], rec[8]
local stats = KEYS[6]

local function log(reason, amount, billing)
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[14], '*', 'imp', imp, 'ad', ad, 'event', event,
             'value', value, 'order', ARGV[5], 'reason', reason, 'billing', billing, 'amount', amount,
             'ts', ARGV[6])
end

local function reject(reason)
  redis.call('HINCRBY', stats, 'xconv:' .. reason, 1)
  redis.call('EXPIRE', stats, ARGV[10])
  log(reason, 0, '')
  return {0, 0, reason, '', ad}
end

local function add(field, n)
  redis.call('HINCRBY', stats, field, n)
  redis.call('HINCRBY', stats, 'a:' .. ad .. ':' .. field, n)
  if kw ~= '' then redis.call('HINCRBY', stats, 'k:' .. kw .. ':' .. field, n) end
  if cat ~= '' then redis.call('HINCRBY', stats, 'g:' .. cat .. ':' .. field, n) end
end

if ARGV[13] ~= '' then
  return reject(ARGV[13])
end
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then
  return reject('duplicate_order')
end
if rec[1] ~= '1' then
  return reject('invalid_click')
end
if tonumber(ARGV[6]) - tonumber(rec[2]) > tonumber(ARGV[7]) then
  return reject('outside_window')
end

-- counted
add('conv', 1)
add('cval', value)
redis.call('HINCRBY', stats, 'p:' .. pub .. ':conv', 1)
redis.call('HINCRBY', KEYS[8], 'conv:' .. event, 1)
redis.call('HINCRBY', KEYS[8], 'a:' .. ad .. ':conv:' .. event, 1)
local amount, billing = 0, 'cpc'
if cpa ~= '' and cpa ~= event then
  billing = 'other_event'
elseif cpa ~= '' then
  local price = tonumber(rec[9])
  local budget = redis.call('HMGET', KEYS[3], 'daily', 'total')
  local fits = budget[1] and budget[2]  -- unknown campaign budget: never charge blindly
  if fits then
    local daily, total = tonumber(budget[1]), tonumber(budget[2])
    local spent_total = tonumber(redis.call('GET', KEYS[4]) or '0')
    local spent_day = tonumber(redis.call('GET', KEYS[5]) or '0')
    fits = not ((total >= 0 and spent_total + price > total) or (daily >= 0 and spent_day + price > daily))
  end
  if fits then
    amount, billing = price, 'charged'
    redis.call('INCRBY', KEYS[4], price)
    redis.call('INCRBY', KEYS[5], price)
    redis.call('EXPIRE', KEYS[5], ARGV[11])
    add('spend', price)
    redis.call('HINCRBY', stats, 'cspend', price)
    redis.call('HINCRBY', stats, 'p:' .. pub .. ':spend', price)
    -- fields in ascending name order, as ledger_append requires
    ledger_append(KEYS[7], KEYS[10], ARGV[15], ARGV[8], {'ad', ad, 'amount', price, 'day', ARGV[8],
                  'event', event, 'hour', ARGV[9], 'imp', imp, 'kind', 'conv', 'order', ARGV[5],
                  'pub', pub, 'reason', 'valid', 'ts', ARGV[6]})
  else
    billing = 'budget_exhausted'
  end
end
redis.call('EXPIRE', stats, ARGV[10])
redis.call('HSET', KEYS[2], ARGV[4], imp .. '|' .. amount)
log('counted', amount, billing)
return {1, amount, 'counted', billing, ad}
