-- One campaign's budget settings and spend, read in one call (read-only; one campaign's keys,
-- so one slot on a cluster). KEYS: 1 budget hash  2 total spend  3 today's spend
-- Returns: {daily, total, pacing, freq_cap, spent_total, spent_day, cpa_event, cpa_bid} (missing ones nil)
local b = redis.call('HMGET', KEYS[1], 'daily', 'total', 'pacing', 'freq_cap', 'cpa_event', 'cpa_bid')
return {b[1], b[2], b[3], b[4], redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), b[5], b[6]}
