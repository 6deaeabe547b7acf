-- The ledger's hash chain, for every script that appends to a campaign's ledger stream.
-- A module: service.billing.chain.with_chain(name) prepends sha256.lua and this file to the
-- script `name`, which then calls the one local defined here:
--
--   ledger_append(stream, head, campaign, day, fields) -> entry id, seq, hash
--     stream    the campaign's ledger stream key, am:{c:C}:ledger (one of the script's KEYS)
--     head      the campaign's chain head hash key, am:{c:C}:ledger:head (one of its KEYS)
--     campaign  the campaign id C (an ARGV: it names the chain's genesis)
--     day       the billing day (YYYYMMDD) the entry counts towards, for the per-day heads
--     fields    the entry's own fields, a flat list {name1, value1, name2, value2, ...}, names in
--               ascending byte order (lower-case ASCII letters and _; not seq, prev or hash),
--               values strings or integers (written with tostring, exactly as hashed)
--
-- It appends the fields plus seq (1, 2, ... per campaign), prev (the previous entry's hash; for
-- seq 1 the genesis, sha256 of 'admatch-ledger/1 genesis ' .. C) and hash = sha256 of the
-- canonical encoding (service/billing/chain.py documents it; ledger verify recomputes it):
--   'admatch-ledger/1\n' .. 'seq=' .. seq .. '\n' .. 'prev=' .. prev .. '\n'
--   then 'name=value\n' for each field in the order given (ascending by name),
--   with '\' in a value written '\\' and a newline '\n'.
-- and moves the head: HASH head {seq, hash, h:<day> = hash, s:<day> = seq, n:<day> = entries}.
-- Call it only from a script whose KEYS include both keys (they share the campaign's hash tag).
local ledger_append
do
  local find, gsub, concat, tostring = string.find, string.gsub, table.concat, tostring
  local ESCAPES = {['\\'] = '\\\\', ['\n'] = '\\n'}

  ledger_append = function(stream, head, campaign, day, fields)
    local state = redis.call('HMGET', head, 'seq', 'hash', 'n:' .. day)
    local seq = tonumber(state[1] or '0') + 1
    local prev = state[2] or sha256_hex('admatch-ledger/1 genesis ' .. campaign)
    local parts = {'admatch-ledger/1\nseq=', seq, '\nprev=', prev, '\n'}
    local args = {}
    for i = 1, #fields, 2 do
      local name, value = fields[i], tostring(fields[i + 1])
      args[i], args[i + 1] = name, value
      if find(value, '[\\\n]') then
        value = gsub(value, '[\\\n]', ESCAPES)
      end
      parts[#parts + 1] = name .. '=' .. value .. '\n'
    end
    local hash = sha256_hex(concat(parts))
    local n = #args
    args[n + 1], args[n + 2], args[n + 3], args[n + 4], args[n + 5], args[n + 6] =
      'seq', tostring(seq), 'prev', prev, 'hash', hash
    local id = redis.call('XADD', stream, '*', unpack(args))
    redis.call('HSET', head, 'seq', seq, 'hash', hash, 'h:' .. day, hash, 's:' .. day, seq,
               'n:' .. day, tonumber(state[3] or '0') + 1)
    return id, seq, hash
  end
end
