-- SHA-256 (FIPS 180-4) for Redis/Valkey Lua 5.1, which has only redis.sha1hex built in.
-- A module prepended to a script (service.billing.chain.with_chain does it); it defines one
-- local, sha256_hex(message) -> 64 lowercase hex digits, for a message of any bytes.
-- Checked against Python's hashlib on random messages (tests/test_ledger_chain.py).
--
-- Arithmetic: the `bit` library (LuaBitOp) reduces its arguments mod 2^32 (exactly, below 2^51)
-- and returns signed 32-bit integers. Sums are left unreduced inside a block where that is safe —
-- the largest (the schedule words, e and t1) stay below 2^41 in the worst case — and `% M` makes
-- a value an unsigned 32-bit integer where arithmetic needs one: maj(a, b, c) is computed as
-- (a + b + c - (a xor b xor c)) / 2, and ch(e, f, g) as (e and f) + (not e and g) with not e =
-- -1 - e (the two terms have no bit in common). Function calls are what costs in Lua 5.1, so
-- these save calls; eight rounds are written out per loop pass so the eight working variables
-- rotate by name instead of being shuffled. Cost: tests/test_ledger_chain.py and
-- scripts/bench_clicks.py.
local sha256_hex
do
  local band, bxor, ror, rshift, tohex = bit.band, bit.bxor, bit.ror, bit.rshift, bit.tohex
  local byte, char, rep, concat = string.byte, string.char, string.rep, table.concat
  local M = 4294967296  -- 2^32
  local K = {
    1116352408, 1899447441, 3049323471, 3921009573, 961987163, 1508970993, 2453635748, 2870763221,
    3624381080, 310598401, 607225278, 1426881987, 1925078388, 2162078206, 2614888103, 3248222580,
    3835390401, 4022224774, 264347078, 604807628, 770255983, 1249150122, 1555081692, 1996064986,
    2554220882, 2821834349, 2952996808, 3210313671, 3336571891, 3584528711, 113926993, 338241895,
    666307205, 773529912, 1294757372, 1396182291, 1695183700, 1986661051, 2177026350, 2456956037,
    2730485921, 2820302411, 3259730800, 3345764771, 3516065817, 3600352804, 4094571909, 275423344,
    430227734, 506948616, 659060556, 883997877, 958139571, 1322822218, 1537002063, 1747873779,
    1955562222, 2024104815, 2227730452, 2361852424, 2428436474, 2756734187, 3204031479, 3329325298,
  }
  local W = {}  -- the message schedule, reused by every block

  -- One 64-byte block of `msg` from byte `at` into the state h1..h8; returns the new state.
  local function block(msg, at, h1, h2, h3, h4, h5, h6, h7, h8)
    for i = 1, 16 do
      local b1, b2, b3, b4 = byte(msg, at, at + 3)
      W[i] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      at = at + 4
    end
    for i = 17, 64 do
      local x, y = W[i - 15], W[i - 2]
      W[i] = W[i - 16] + W[i - 7] + bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
             + bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
    end
    local a, b, c, d, e, f, g, h = h1, h2, h3, h4, h5, h6, h7, h8
    for i = 1, 64, 8 do  -- rounds i .. i + 7; after eight the names are back in place
      local t1
      t1 = h + bxor(ror(e, 6), ror(e, 11), ror(e, 25)) + band(e, f) + band(-1 - e, g) + K[i] + W[i]
      d = d + t1
      h = (t1 + bxor(ror(a, 2), ror(a, 13), ror(a, 22)) + (a + b + c - bxor(a, b, c) % M) / 2) % M
      t1 = g + bxor(ror(d, 6), ror(d, 11), ror(d, 25)) + band(d, e) + band(-1 - d, f) + K[i + 1] + W[i + 1]
      c = c + t1
      g = (t1 + bxor(ror(h, 2), ror(h, 13), ror(h, 22)) + (h + a + b - bxor(h, a, b) % M) / 2) % M
      t1 = f + bxor(ror(c, 6), ror(c, 11), ror(c, 25)) + band(c, d) + band(-1 - c, e) + K[i + 2] + W[i + 2]
      b = b + t1
      f = (t1 + bxor(ror(g, 2), ror(g, 13), ror(g, 22)) + (g + h + a - bxor(g, h, a) % M) / 2) % M
      t1 = e + bxor(ror(b, 6), ror(b, 11), ror(b, 25)) + band(b, c) + band(-1 - b, d) + K[i + 3] + W[i + 3]
      a = a + t1
      e = (t1 + bxor(ror(f, 2), ror(f, 13), ror(f, 22)) + (f + g + h - bxor(f, g, h) % M) / 2) % M
      t1 = d + bxor(ror(a, 6), ror(a, 11), ror(a, 25)) + band(a, b) + band(-1 - a, c) + K[i + 4] + W[i + 4]
      h = h + t1
      d = (t1 + bxor(ror(e, 2), ror(e, 13), ror(e, 22)) + (e + f + g - bxor(e, f, g) % M) / 2) % M
      t1 = c + bxor(ror(h, 6), ror(h, 11), ror(h, 25)) + band(h, a) + band(-1 - h, b) + K[i + 5] + W[i + 5]
      g = g + t1
      c = (t1 + bxor(ror(d, 2), ror(d, 13), ror(d, 22)) + (d + e + f - bxor(d, e, f) % M) / 2) % M
      t1 = b + bxor(ror(g, 6), ror(g, 11), ror(g, 25)) + band(g, h) + band(-1 - g, a) + K[i + 6] + W[i + 6]
      f = f + t1
      b = (t1 + bxor(ror(c, 2), ror(c, 13), ror(c, 22)) + (c + d + e - bxor(c, d, e) % M) / 2) % M
      t1 = a + bxor(ror(f, 6), ror(f, 11), ror(f, 25)) + band(f, g) + band(-1 - f, h) + K[i + 7] + W[i + 7]
      e = e + t1
      a = (t1 + bxor(ror(b, 2), ror(b, 13), ror(b, 22)) + (b + c + d - bxor(b, c, d) % M) / 2) % M
    end
    return (h1 + a) % M, (h2 + b) % M, (h3 + c) % M, (h4 + d) % M,
           (h5 + e) % M, (h6 + f) % M, (h7 + g) % M, (h8 + h) % M
  end
  sha256_hex = function(msg)
    local n = #msg
    -- padding: 0x80, zeros up to 56 mod 64, then the length in bits, 64-bit big-endian
    local bits = n * 8
    local hi, lo = (bits - bits % M) / M, bits % M
    local padded = msg .. char(128) .. rep('\0', (55 - n) % 64) ..
      char((hi - hi % 16777216) / 16777216, (hi % 16777216 - hi % 65536) / 65536,
           (hi % 65536 - hi % 256) / 256, hi % 256,
           (lo - lo % 16777216) / 16777216, (lo % 16777216 - lo % 65536) / 65536,
           (lo % 65536 - lo % 256) / 256, lo % 256)
    local h1, h2, h3, h4 = 1779033703, 3144134277, 1013904242, 2773480762
    local h5, h6, h7, h8 = 1359893119, 2600822924, 528734635, 1541459225
    for at = 1, #padded, 64 do
      h1, h2, h3, h4, h5, h6, h7, h8 = block(padded, at, h1, h2, h3, h4, h5, h6, h7, h8)
    end
    return concat({tohex(h1), tohex(h2), tohex(h3), tohex(h4), tohex(h5), tohex(h6), tohex(h7), tohex(h8)})
  end
end
