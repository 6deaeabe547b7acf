-- Counts one click for a client (IP or user key) and says whether it is over either limit.
-- KEYS: 1 this minute's counter  2 this hour's counter
-- ARGV: 1 per-minute limit  2 per-hour limit
-- Returns: 1 when over a limit (the click is still counted), else 0
local m = redis.call('INCR', KEYS[1])
if m == 1 then redis.call('EXPIRE', KEYS[1], 120) end
local h = redis.call('INCR', KEYS[2])
if h == 1 then redis.call('EXPIRE', KEYS[2], 7200) end
if m > tonumber(ARGV[1]) or h > tonumber(ARGV[2]) then return 1 end
return 0
