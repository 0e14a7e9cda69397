//! Differential tests of `cmsgpack`, `struct` and `bit` against a real
//! `redis-server`, and of the libraries inside `FUNCTION` libraries and in
//! RESP3 (helpers and conventions in `diff_lua_libs.rs`).

use kv::config::EngineKind;

use crate::common::diff::Pair;
use crate::diff_lua_libs::{eval_all, eval_inputs};

const CMSGPACK: &[&str] = &[
    "return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION}",
    "return cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32, 2^53, 2^63 - 1024)",
    "return cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, -2^53, -2^63)",
    "return cmsgpack.pack(2^63, 2^64, -2^63 - 4096, 1.5, -1.5, 0.1, 1/3, 3.4e38, 3.5e38, 1e300, 5e-324, -0)",
    "return cmsgpack.pack(1/0, -1/0, 0/0, -(0/0))",
    "return cmsgpack.pack('', 'a', string.rep('x', 31), string.rep('x', 32))",
    "return #cmsgpack.pack(string.rep('x', 255), string.rep('x', 256), string.rep('x', 65535), string.rep('x', 65536))",
    "return cmsgpack.pack(string.rep('y', 256)):sub(1, 4) .. cmsgpack.pack(string.rep('z', 65536)):sub(1, 6)",
    "return cmsgpack.pack(true, false, nil, cjson.null, tostring)",
    "return cmsgpack.pack(nil)",
    "return cmsgpack.pack({})",
    "return cmsgpack.pack({1, 2, 3}, {'a', {'b'}}, {[1] = 1, [2] = 2})",
    "return cmsgpack.pack({[1] = 1, [3] = 3})",
    "return cmsgpack.pack({[2] = 2})",
    "return cmsgpack.pack({[0] = 0, [1] = 1})",
    "return cmsgpack.pack({[1.5] = 1}, {[-1] = 1}, {[2^31] = 1}, {[2^31 - 1] = 1})",
    "return cmsgpack.pack({a = 1, b = {c = 2}, [true] = false, [1] = 'one'})",
    "local t = {} for i = 1, 16 do t[i] = i end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 70000 do t[i] = i % 7 end return redis.sha1hex(cmsgpack.pack(t))",
    "local t = {} for i = 1, 20 do t['k' .. i] = i end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 20 do t['k' .. i] = i end return cjson.encode(cmsgpack.unpack(cmsgpack.pack(t)))",
    "local t = {} for i = 1, 70000 do t['k' .. i] = i end return redis.sha1hex(cmsgpack.pack(t))",
    "local t = {} for i = 1, 15 do t = {t} end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 16 do t = {t} end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 30 do t = {t} end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 20 do t = {x = t} end return cmsgpack.pack(t)",
    "local k = {} for i = 1, 20 do k = {k} end return cmsgpack.pack({[k] = 1})",
    "local t = {} t[1] = t return cmsgpack.pack(t)",
    "local t = {} t.me = t return cmsgpack.pack(t)",
    "return cmsgpack.pack()",
    "local t = {} for i = 1, 4000 do t[i] = i end return #cmsgpack.pack(unpack(t))",
    "local t = {} for i = 1, 4001 do t[i] = i end return cmsgpack.pack(unpack(t))",
    "return {cmsgpack.unpack(cmsgpack.pack(1, -1, 1.5, 'str', true, false))}",
    "return cjson.encode({cmsgpack.unpack(cmsgpack.pack({1, 2, {3, 4}}, {a = {b = 'c'}}))})",
    "local v = {cmsgpack.unpack(cmsgpack.pack(2^53, -2^63, 2^63, 0.1, 3.4e38))} return {tostring(v[1]), tostring(v[2]), tostring(v[3]), tostring(v[4]), tostring(v[5])}",
    "local a, b = cmsgpack.unpack(cmsgpack.pack(nil, 1)) return {tostring(a), b}",
    "return select('#', cmsgpack.unpack(cmsgpack.pack(nil, nil, nil)))",
    "return select('#', cmsgpack.unpack(''))",
    "return cmsgpack.unpack()",
    "return cmsgpack.unpack({})",
    "return cmsgpack.unpack(123)",
    "return select('#', cmsgpack.unpack('\\1', 'extra', 'args'))",
    "return cmsgpack.unpack('\\129\\192\\1')",
    "return cmsgpack.unpack('\\129\\203\\127\\248\\0\\0\\0\\0\\0\\0\\1')",
    "return cjson.encode({cmsgpack.unpack('\\145\\192')})",
    "return cjson.encode({cmsgpack.unpack('\\146\\192\\1')})",
    "return cjson.encode({cmsgpack.unpack('\\130\\161a\\192\\161b\\1')})",
    "return cjson.encode({cmsgpack.unpack('\\129\\145\\1\\2')})",
    "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')",
    "return tostring(cmsgpack.unpack('\\207\\128\\0\\0\\0\\0\\0\\0\\0'))",
    "return tostring(cmsgpack.unpack('\\211\\128\\0\\0\\0\\0\\0\\0\\1'))",
    "return cmsgpack.unpack('\\221\\255\\255\\255\\255\\1')",
    "return cmsgpack.unpack('\\223\\255\\255\\255\\255\\1\\1')",
    "return cmsgpack.unpack('\\219\\127\\255\\255\\255abc')",
    "return cmsgpack.unpack('\\196\\1a')",
    // Every type byte, alone and with payload bytes after it.
    "local out = {} for b = 0, 255 do local ok, v = pcall(cmsgpack.unpack, string.char(b)) out[#out + 1] = tostring(ok) .. ' ' .. type(v) .. ' ' .. ((type(v) == 'string' or type(v) == 'number') and tostring(v) or '') end return out",
    "local out = {} for b = 0, 255 do local ok, v = pcall(cmsgpack.unpack, string.char(b) .. '\\1\\2\\3\\4\\5\\6\\7\\8\\9') out[#out + 1] = tostring(ok) .. ' ' .. type(v) .. ' ' .. ((type(v) == 'string' or type(v) == 'number') and tostring(v) or '') end return out",
    // Every truncation of a message.
    "local s = cmsgpack.pack({1, 'ab', {x = 2^40}}, 3.25, -70000, string.rep('q', 40)) local out = {} for n = 0, #s do local ok, e = pcall(cmsgpack.unpack, s:sub(1, n)) out[#out + 1] = ok and 'ok' or e end return out",
    // Streams.
    "local s = cmsgpack.pack(1, 'two', {3}) local out, off = {}, 0 while off ~= -1 do local v off, v = cmsgpack.unpack_one(s, off) out[#out + 1] = cjson.encode({off, v}) end return out",
    "local s = cmsgpack.pack(1, 2, 3, 4, 5) return {cmsgpack.unpack_limit(s, 2)}",
    "local s = cmsgpack.pack(1, 2, 3, 4, 5) return {cmsgpack.unpack_limit(s, 2, 2)}",
    "local s = cmsgpack.pack(1, 2, 3, 4, 5) return {cmsgpack.unpack_limit(s, 0)}",
    "local s = cmsgpack.pack(1, 2, 3, 4, 5) return {cmsgpack.unpack_limit(s, 0, 1)}",
    "local s = cmsgpack.pack(1, 2, 3, 4, 5) return {cmsgpack.unpack_limit(s, 10^12)}",
    "local s = cmsgpack.pack(1, 2, 3, 4, 5) return {cmsgpack.unpack_limit(s, '3', '1')}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 3)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 4)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, -1)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, -5, 1)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 2^32 + 7)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 'x')}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s)}",
    "return {cmsgpack.unpack_one()}",
    "return {cmsgpack.unpack_one('\\129', 0)}",
    // Lua's C stack: top-level values, nesting, arguments.
    "return select('#', cmsgpack.unpack(string.rep('\\1', 7998)))",
    "return select('#', cmsgpack.unpack(string.rep('\\1', 8000)))",
    "return select('#', cmsgpack.unpack(string.rep('\\1', 7996), 'a', 'b'))",
    "return select('#', cmsgpack.unpack_limit(string.rep('\\1', 7996), 8000))",
    "return select('#', cmsgpack.unpack(string.rep('\\161a', 5000)))",
    // (Deep tables are not returned: the reply conversion recurses.)
    "local v = cmsgpack.unpack(string.rep('\\145', 3997) .. '\\1') return type(v)",
    "local v = cmsgpack.unpack(string.rep('\\145', 3998) .. '\\1') return type(v)",
    "return #cjson.encode(cmsgpack.unpack(string.rep('\\145', 999) .. '\\1'))",
    "return cmsgpack.unpack(string.rep('\\145', 5000) .. '\\1')",
    "return cmsgpack.unpack(string.rep('\\129\\1', 5000) .. '\\1')",
    "return cmsgpack.unpack(string.rep('\\129\\145', 3000) .. '\\1')",
    "return {pcall(cmsgpack.unpack, '\\193')}",
];

#[test]
fn cmsgpack_matches_redis() {
    let mut pair = Pair::start(EngineKind::Memory);
    eval_all(&mut pair, CMSGPACK, "cmsgpack");
    // Packed in Lua, compared as bytes; then each message unpacked again.
    let round_trip = "local v = cjson.decode(ARGV[1]) local s = cmsgpack.pack(v) \
        return {s, cjson.encode(cmsgpack.unpack(s))}";
    let inputs: &[&[u8]] = &[
        b"[1,2,3]",
        b"{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
        b"[0.5,-0.25,1e300,-1e-300,4294967296,-4294967297]",
        b"[\"\",\"\\u00e9\",[],{}]",
    ];
    eval_inputs(&mut pair, round_trip, inputs, "cmsgpack round trip");
}

const STRUCT: &[&str] = &[
    "return struct.pack('b', 1) .. struct.pack('B', 255) .. struct.pack('h', -2) .. struct.pack('H', 65535)",
    "return struct.pack('>b>B>h>H>i>I>l>L>T', -1, 1, -2, 2, -3, 3, -4, 4, 5)",
    "return struct.pack('<b<B<h<H<i<I<l<L<T', -1, 1, -2, 2, -3, 3, -4, 4, 5)",
    "return struct.pack('>i1i2i3i4i5i6i7i8', 1, 2, 3, 4, 5, 6, 7, 8)",
    "return struct.pack('<i9>i9<I16>i32', -1, -1, -1, -2)",
    "return struct.pack('i33', 1)",
    "return struct.pack('i99999999999', 1)",
    "return struct.pack('>b', 128) .. struct.pack('>B', -1) .. struct.pack('>h', 70000)",
    "return struct.pack('>L', 2^64) .. struct.pack('>L', 2^63) .. struct.pack('>L', 0/0) .. struct.pack('>l', -1e30)",
    "return struct.pack('>l', 1e30) .. struct.pack('>i', 0.5) .. struct.pack('>i', -0.5) .. struct.pack('>i', -1.5)",
    "return struct.pack('>l', 1/0) .. struct.pack('>l', -1/0) .. struct.pack('>L', 2^64 - 2048)",
    "return struct.pack('>f>d<f<d', 0.1, 0.1, 1/3, 1/3)",
    "return struct.pack('>f', 1e39) .. struct.pack('>f', -1/0) .. struct.pack('>d', 0/0)",
    "return struct.pack('!4bi', 1, 2) .. struct.pack('!bh', 1, 2) .. struct.pack('!8bd', 1, 2)",
    "return struct.pack('!2bi8', 1, 2) .. struct.pack('!16bi32', 1, 2) .. struct.pack('!4bi3', 1, 2)",
    "return struct.pack('!3b', 1)",
    "return struct.pack('!0b', 1)",
    "return struct.pack('!b', 1)",
    "return struct.pack('x') .. struct.pack('bxb', 1, 2) .. struct.pack('b x b', 1, 2)",
    "return struct.pack('c5', 'hello world') .. struct.pack('c0', 'whole') .. struct.pack('c', 'xyz')",
    "return struct.pack('c5', 'abc')",
    "return struct.pack('bc5', 1, 'abc')",
    "return struct.pack('s', 'zero') .. struct.pack('s', '')",
    "return struct.pack('ss', 'a')",
    "return struct.pack('c2147483647', 'a')",
    "return struct.pack('c2147483648', 'a')",
    "return struct.pack('i', '12') .. struct.pack('i', ' 0x10 ') .. struct.pack('c0', 42)",
    "return struct.pack('i', 'twelve')",
    "return struct.pack('i')",
    "return struct.pack('d', {})",
    "return struct.pack('c0', {})",
    "return struct.pack()",
    "return struct.pack(123)",
    "return struct.pack('q', 1)",
    "return struct.pack('4', 1)",
    "return struct.pack('b\\0b', 1, 2)",
    "return struct.pack('', 1, 2)",
    "return {struct.unpack('>i4', struct.pack('>i4', -5))}",
    "return {struct.unpack('<bBhHiIlLT', struct.pack('<bBhHiIlLT', -1, 255, -300, 60000, -70000, 4000000000, -2^40, 2^50, 77))}",
    "return {struct.unpack('>bBhHiIlLT', struct.pack('>bBhHiIlLT', -1, 255, -300, 60000, -70000, 4000000000, -2^40, 2^50, 77))}",
    "local v = {struct.unpack('<L', string.rep('\\255', 8))} return {tostring(v[1]), v[2]}",
    "local v = {struct.unpack('<l', string.rep('\\255', 8))} return {tostring(v[1]), v[2]}",
    "return {struct.unpack('<i9', '\\128' .. string.rep('\\255', 8))}",
    "return {struct.unpack('<i9', string.rep('\\0', 8) .. '\\128')}",
    "return {struct.unpack('<i12', string.rep('\\255', 12))}",
    "return {struct.unpack('>i16', '\\127' .. string.rep('\\0', 14) .. '\\1')}",
    "local v = {struct.unpack('<I16', string.rep('\\255', 16))} return {tostring(v[1]), v[2]}",
    "return {struct.unpack('i0', 'abc')}",
    "local v = {struct.unpack('>f>d', struct.pack('>f>d', 0.1, 0.1))} return {tostring(v[1]), tostring(v[2]), v[3]}",
    "local v = {struct.unpack('<f', '\\0\\0\\192\\127')} return tostring(v[1])",
    "return {struct.unpack('!4bi', struct.pack('!4bi', 7, 9))}",
    "return {struct.unpack('bxb', '\\1\\0\\2')}",
    "return {struct.unpack('c3c2', 'abcde')}",
    "return {struct.unpack('bc0', '\\2abc')}",
    "return {struct.unpack('bc0b', '\\0\\7')}",
    "return {struct.unpack('c2c0', '12abcdefghijklm')}",
    "return {struct.unpack('c2c0', '-1abc')}",
    "return {struct.unpack('c4c0', '0x2aabc')}",
    "return {struct.unpack('c0', 'abc')}",
    "return {struct.unpack('c2c0', 'xyabc')}",
    "return {struct.unpack('bc0', '\\9abc')}",
    "return {struct.unpack('s', 'abc\\0def\\0')}",
    "return {struct.unpack('ss', 'abc\\0def\\0')}",
    "return {struct.unpack('s', 'abc')}",
    "return {struct.unpack('sb', 'abc\\0')}",
    "return {struct.unpack('c2147483647', 'abc')}",
    "return {struct.unpack('c99999999999', 'abc')}",
    "return {struct.unpack('b', 'abc', 2)}",
    "return {struct.unpack('b', 'abc', 3)}",
    "return {struct.unpack('b', 'abc', 4)}",
    "return {struct.unpack('b', 'abc', 0)}",
    "return {struct.unpack('b', 'abc', -1)}",
    "return {struct.unpack('!8bd', string.rep('\\0', 16), -1)}",
    "return {struct.unpack('', 'abc', 2)}",
    "return {struct.unpack('', 'abc', -5)}",
    "return {struct.unpack('b', 'abc', '2')}",
    "return {struct.unpack('b', 'abc', 'x')}",
    "return {struct.unpack('z', 'abc')}",
    "return {struct.unpack('z', 'abc', 10)}",
    "return {struct.unpack('i')}",
    "return {struct.unpack()}",
    "return {struct.unpack('b', 7)}",
    "return {struct.unpack('>!4 h', '\\0\\1')}",
    "return select('#', struct.unpack(string.rep('b', 7996), string.rep('a', 8000)))",
    "return select('#', struct.unpack(string.rep('b', 7998), string.rep('a', 8000)))",
    "return select('#', struct.unpack(string.rep('c1', 5000), string.rep('a', 8000)))",
    "return struct.size('bBhHiIlLTfdx')",
    "return struct.size('!bBhHiIlLTfdx')",
    "return struct.size('!4bd') + struct.size('!2bd') * 100 + struct.size('bi3i5') * 10000",
    "return struct.size('c10c')",
    "return struct.size('c0')",
    "return struct.size('s')",
    "return struct.size('zq7')",
    "return struct.size('#')",
    "return struct.size('!5')",
    "return struct.size('i40')",
    "return struct.size('c2147483647c2147483647')",
    "return struct.size('c2147483648')",
    "return struct.size()",
    "return struct.size(5)",
    "return {pcall(struct.pack, 'z')}",
    "local p = struct.pack return p('q')",
];

const BIT: &[&str] = &[
    "return {bit.tobit(2^32 + 5), bit.tobit(-1), bit.tobit(2^31), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit('0x10')}",
    "return {bit.bnot(0), bit.band(0xff, 0x0f, 0x3), bit.bor(1, 2, 4), bit.bxor(7, 2), bit.band()}",
    "return {bit.lshift(1, 31), bit.lshift(1, 32), bit.rshift(-1, 28), bit.arshift(-16, 2), bit.rol(0x80000001, 1), bit.ror(1, 1)}",
    "return {bit.bswap(0x12345678), bit.tohex(255), bit.tohex(255, 2), bit.tohex(255, -4), bit.tohex(-1, 12), bit.tohex(1, 0)}",
    "return bit.band({})",
    "return bit.band(1, {}, {})",
    "return bit.band(1, 'x')",
    "return bit.tohex(1, nil)",
    "return bit.tobit()",
    "return bit.lshift(1)",
    "return {pcall(bit.bor, nil)}",
    "local b = bit.bxor return b(1, true)",
    "return bit:band()",
];

#[test]
fn struct_and_bit_match_redis() {
    let mut pair = Pair::start(EngineKind::Memory);
    eval_all(&mut pair, STRUCT, "struct");
    eval_all(&mut pair, BIT, "bit");
}

/// The libraries in `FUNCTION` libraries and in RESP3 (the replies'
/// shapes change, the libraries do not).
#[test]
fn libraries_work_in_functions_and_resp3() {
    let mut pair = Pair::start(EngineKind::Memory);
    pair.check(
        &[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=libs\n\
              redis.register_function('enc', function(keys, args) return cjson.encode({args[1], #args}) end)\n\
              redis.register_function('bad', function(keys, args)\n  return cjson.decode(args[1])\nend)\n\
              redis.register_function('mp', function(keys, args) return {cmsgpack.unpack(args[1])} end)\n\
              redis.register_function('st', function(keys, args) return struct.pack('>I2', #args) end)",
        ],
        "load",
    );
    for args in [
        &[b"FCALL".as_slice(), b"enc", b"0", b"x", b"y"][..],
        &[b"FCALL", b"bad", b"0", b"{\"a\""],
        &[b"FCALL", b"bad", b"0", b"[1,2]"],
        &[b"FCALL", b"mp", b"0", b"\x93\x01\xa1a\xc3"],
        &[b"FCALL", b"mp", b"0", b"\xc1"],
        &[b"FCALL", b"st", b"0", b"a", b"b", b"c"],
    ] {
        pair.check(args, "fcall");
    }
    pair.check(
        &[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=atload\nlocal x = cjson.encode({1})\nredis.register_function('f', function() return x end)",
        ],
        "cjson is not a load-time global",
    );
    pair.both(&[b"HELLO", b"3"]);
    let scripts = [
        "return cjson.decode('[1, true, false, null, \"s\", 1.5]')",
        "return {cjson.decode('true'), cjson.decode('false')}",
        "redis.setresp(3) return cjson.decode('{\"a\":1}')",
        "return {cmsgpack.unpack(cmsgpack.pack(true, false, 2.5))}",
        "return cjson.decode('[1')",
    ];
    eval_all(&mut pair, &scripts, "RESP3");
}
