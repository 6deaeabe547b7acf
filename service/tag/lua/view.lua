-- Counts one viewable impression, once per impression id, in the impression's hour.
-- KEYS: 1 viewed set of the impression's day  2 stats hash of the impression's hour
-- ARGV: 1 impression id  2 ad id  3 publisher id  4 viewed-set TTL s  5 stats TTL s
-- Returns: 1 when counted now, 0 when it had been counted before
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'view', 1)
redis.call('HINCRBY', KEYS[2], 'a:' .. ARGV[2] .. ':view', 1)
redis.call('HINCRBY', KEYS[2], 'p:' .. ARGV[3] .. ':view', 1)
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
