-- Queue the pages of one flush that are neither queued nor analysed recently, while the queue
-- has room: one call per flush, one slot (every key carries the hash tag {analysis}).
-- KEYS: 1 the stream, 2.. each page's "seen" key (same order as the pages in ARGV)
-- ARGV: 1 maximum stream length, 2 dedupe seconds, then per page: page key, title, body, enqueue time
-- Returns {queued, deduplicated, dropped because the queue is full, stream length after}
local stream = KEYS[1]
local maxlen = tonumber(ARGV[1])
local len = redis.call('XLEN', stream)
local queued, dup, full = 0, 0, 0
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 4
  if redis.call('EXISTS', KEYS[i]) == 1 then
    dup = dup + 1
  elseif len >= maxlen then
    full = full + 1  -- not marked seen: offered again later, it is queued when there is room
  else
    redis.call('SET', KEYS[i], '1', 'EX', ARGV[2])
    redis.call('XADD', stream, '*', 'k', ARGV[a], 'ti', ARGV[a + 1], 'b', ARGV[a + 2], 't', ARGV[a + 3])
    queued = queued + 1
    len = len + 1
  end
end
return {queued, dup, full, len}
