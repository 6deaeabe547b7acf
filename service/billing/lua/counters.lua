-- Add amounts to fields of one hash and refresh its TTL: the impression flush's one call per key
-- (instead of an HINCRBY per field and an EXPIRE). One key, so it runs unchanged on a cluster.
-- KEYS: 1 hash   ARGV: 1 ttl s (0: leave the TTL), then field, amount pairs
local key = KEYS[1]
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1])
end
if tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', key, ARGV[1])
end
return 0
