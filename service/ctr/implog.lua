-- Append a flush's impression-log entries to the stream, trimming it to about MAXLEN entries:
-- one call per flush instead of one XADD round trip per impression. One key (cluster-safe).
-- KEYS: 1 stream   ARGV: 1 maxlen (approximate), then one JSON entry per argument
-- Returns: the number of entries appended
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'j', ARGV[i])
end
return #ARGV - 1
