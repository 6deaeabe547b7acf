-- Claim an advertiser's order id for one click (an order counts for one click of one campaign), or
-- release a claim of ours. KEYS: 1 the advertiser's order key
-- ARGV: 1 click id  2 ttl s  3 'claim' or 'release'
-- Returns: claim: the click id the order is held for (ours when new); release: 1 if released
if ARGV[3] == 'release' then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
  return 0
end
local held = redis.call('GET', KEYS[1])
if held then
  return held
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
