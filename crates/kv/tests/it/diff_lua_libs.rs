//! Differential tests of the Lua libraries Redis adds against a real
//! `redis-server` (see `common/diff.rs`): `cjson` here, `cmsgpack`,
//! `struct` and `bit` in `diff_lua_libs_pack.rs`. For each,
//! every script's reply — values, exact bytes of encodings, and error
//! texts with their `user_script:1:` positions — must be byte-for-byte
//! Redis's. Inputs are round trips, edge numbers (inf, nan, -0, 2^53,
//! 2^63), nested and sparse tables, unicode, malformed input, and
//! settings pushed to their limits (depths near Lua's 8000-slot C stack).
//!
//! Object key order: `cjson.encode` and `cmsgpack.pack` walk tables in
//! Lua's `next` order; our Lua 5.1 hashes as Redis's does, so encodings of
//! multi-key tables are compared raw, not sorted.

use kv::config::EngineKind;

use crate::common;

use common::diff::Pair;

/// Runs `script` with `args` (no keys) on both servers.
pub(crate) fn eval(pair: &mut Pair, script: &str, args: &[&[u8]], context: &str) {
    let mut words: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), b"0"];
    words.extend_from_slice(args);
    pair.check(&words, context);
}

/// Every script of `scripts`, in order.
pub(crate) fn eval_all(pair: &mut Pair, scripts: &[&str], context: &str) {
    for (i, script) in scripts.iter().enumerate() {
        eval(pair, script, &[], &format!("{context} #{i}"));
    }
}

/// `script` once per input, the input as `ARGV[1]`.
pub(crate) fn eval_inputs(pair: &mut Pair, script: &str, inputs: &[&[u8]], context: &str) {
    for (i, input) in inputs.iter().enumerate() {
        eval(pair, script, &[input], &format!("{context} input #{i}"));
    }
}

const CJSON_ENCODE: &[&str] = &[
    "return cjson.encode(1)",
    "return cjson.encode(-1)",
    "return cjson.encode(0)",
    "return cjson.encode(-0)",
    "return cjson.encode(0.1)",
    "return cjson.encode(1/3)",
    "return cjson.encode(-2.5e-7)",
    "return cjson.encode(1e-5)",
    "return cjson.encode(1e14)",
    "return cjson.encode(1e15)",
    "return cjson.encode(123456789012345678)",
    "return cjson.encode(2^53)",
    "return cjson.encode(2^63)",
    "return cjson.encode(-2^63)",
    "return cjson.encode(1.7976931348623157e308)",
    "return cjson.encode(5e-324)",
    "return cjson.encode(1/0)",
    "return cjson.encode(-1/0)",
    "return cjson.encode(0/0)",
    "return cjson.encode('plain')",
    "return cjson.encode('')",
    "return cjson.encode('quote\" slash/ back\\\\ nl\\n tab\\t cr\\r bs\\b ff\\f')",
    "local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end return cjson.encode(table.concat(t))",
    "return cjson.encode('caf\\195\\169 \\226\\130\\172 \\240\\159\\152\\128 \\255\\254')",
    "return cjson.encode(true)",
    "return cjson.encode(false)",
    "return cjson.encode(nil)",
    "return cjson.encode(cjson.null)",
    "return cjson.encode({})",
    "return cjson.encode({{}, {{}}})",
    "return cjson.encode({1, 2, 3})",
    "return cjson.encode({1, 'two', true, false, cjson.null, {3}})",
    "return cjson.encode({a = 1})",
    "return cjson.encode({a = 1, b = 2, c = 3, d = {1, 2}, e = 'x', f = {g = {h = true}}})",
    "local t = {} for i = 1, 40 do t['key' .. i] = i end return cjson.encode(t)",
    "local t = {} for i = 40, 1, -1 do t['k' .. i] = i end return cjson.encode(t)",
    "local t = {} for i = 1, 30 do t['k' .. i] = i end for i = 1, 30, 3 do t['k' .. i] = nil end t.late = true return cjson.encode(t)",
    "local t = {} for i = 1, 30 do t[i * 1.5] = i end return cjson.encode(t)",
    "local t = {} for i = 1, 12 do t[i] = i end t.x = 1 return cjson.encode(t)",
    "return cjson.encode({[1] = 'a', [2] = 'b', [4] = 'd'})",
    "return cjson.encode({[1] = 1, [3] = 3, [5] = 5, [7] = 7, [9] = 9, [10] = 10})",
    "return cjson.encode({[10] = 1})",
    "return cjson.encode({[11] = 1})",
    "return cjson.encode({[1] = 1, [20] = 2})",
    "return cjson.encode({[0] = 'zero'})",
    "return cjson.encode({[-1] = 'neg'})",
    "return cjson.encode({[1.5] = 'frac', [2] = 'two'})",
    "return cjson.encode({[2^31] = 1})",
    "return cjson.encode({[2^31 - 1] = 1})",
    "return cjson.encode({[2^40] = 1, [1] = 2})",
    "return cjson.encode({[1/0] = 1})",
    "return cjson.encode({1, 2, x = 3})",
    "return cjson.encode({[1e15] = 'big', [0.1] = 'small'})",
    "return cjson.encode({[true] = 1})",
    "return cjson.encode({[{}] = 1})",
    "return cjson.encode({[cjson.null] = 1})",
    "return cjson.encode(function() end)",
    "return cjson.encode({f = print or tostring})",
    "return cjson.encode({1, 2, tostring})",
    "return cjson.encode()",
    "return cjson.encode(1, 2)",
    "local t = {} t[1] = t return cjson.encode(t)",
    "local t = {} t.self = t return cjson.encode(t)",
    "local t = {} for i = 1, 1000 do t = {t} end return #cjson.encode(t)",
    "local t = {} for i = 1, 1000 do t = {t} end return cjson.encode({t})",
    "local t = 'leaf' for i = 1, 999 do t = {k = t} end return #cjson.encode(t)",
    "local t = 'leaf' for i = 1, 1000 do t = {k = t} end return cjson.encode(t)",
    // Past the default depth, Lua's C stack decides (7998 arrays, 4000 objects).
    "local j = cjson.new() j.encode_max_depth(100000) local t = {} for i = 1, 7997 do t = {t} end return #j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(100000) local t = {} for i = 1, 7998 do t = {t} end return j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(100000) local t = 1 for i = 1, 3999 do t = {a = t} end return #j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(100000) local t = 1 for i = 1, 4000 do t = {a = t} end return j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(100000) local t = 1 for i = 1, 3000 do t = (i % 3 == 0) and {t} or {a = t} end return #j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(100000) local t = 1 for i = 1, 6000 do t = (i % 3 == 0) and {a = t} or {t} end return j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(100000) local t = 1 for i = 1, 5332 do t = (i % 3 == 0) and {a = t} or {t} end return #j.encode(t)",
    "local j = cjson.new() j.encode_max_depth(3) return j.encode({{{1}}})",
    "local j = cjson.new() j.encode_max_depth(3) return j.encode({{{{1}}}})",
    "local j = cjson.new() j.encode_max_depth(1) return j.encode({1, 2})",
];

/// Settings: their replies, range errors, and their effect (on fresh
/// instances from `cjson.new()`, and on the shared one across scripts).
const CJSON_SETTINGS: &[&str] = &[
    "return {cjson._NAME, cjson._VERSION, type(cjson.null), type(cjson.new)}",
    "return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision()}",
    "return {cjson.encode_sparse_array()}",
    "return {cjson.encode_keep_buffer(), cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers()}",
    "local j = cjson.new() return {j.encode_sparse_array(true, 3, 5)}",
    "local j = cjson.new() return {j.encode_sparse_array('on', nil, 0)}",
    "local j = cjson.new() return {j.encode_sparse_array('off')}",
    "local j = cjson.new() return j.encode_sparse_array(1)",
    "local j = cjson.new() return j.encode_sparse_array(true, -1)",
    "local j = cjson.new() return j.encode_sparse_array(true, 1, -1)",
    "local j = cjson.new() return j.encode_sparse_array(true, 1, 2, 3)",
    "local j = cjson.new() return j.encode_sparse_array({})",
    "local j = cjson.new() j.encode_sparse_array(true) return j.encode({[1] = 1, [20] = 2})",
    "local j = cjson.new() j.encode_sparse_array(false, 0) return j.encode({[1] = 1, [20] = 2})",
    "local j = cjson.new() j.encode_sparse_array(false, 1) return j.encode({[1] = 1, [3] = 2})",
    "local j = cjson.new() j.encode_sparse_array(false, 3, 0) return j.encode({[1] = 1, [3] = 2})",
    "local j = cjson.new() j.encode_sparse_array(false, 2^31 - 1, 0) return j.encode({[1] = 1, [9] = 2})",
    "local j = cjson.new() return j.encode_max_depth(0)",
    "local j = cjson.new() return j.encode_max_depth(2^31)",
    "local j = cjson.new() return j.encode_max_depth(2^32 + 5)",
    "local j = cjson.new() return j.encode_max_depth('7')",
    "local j = cjson.new() return j.encode_max_depth('x')",
    "local j = cjson.new() return j.encode_max_depth(1, 2)",
    "local j = cjson.new() return j.decode_max_depth(-1)",
    "local j = cjson.new() return j.encode_number_precision(15)",
    "local j = cjson.new() return j.encode_number_precision(0)",
    "local j = cjson.new() local out = {} for p = 1, 14 do j.encode_number_precision(p) out[p] = j.encode({1/3, 2.5, 0.15, 123456.789, 1e100, -0.000123456}) end return out",
    "local j = cjson.new() j.encode_number_precision(1) return j.encode({0.5, 1.5, 2.5, 3.5, 0.25, 0.35, 95, 150})",
    "local j = cjson.new() return {j.encode_invalid_numbers('null'), j.encode({1/0, -1/0, 0/0, 1})}",
    "local j = cjson.new() return {j.encode_invalid_numbers(true), j.encode({1/0, -1/0, 0/0, -(0/0), 1})}",
    "local j = cjson.new() j.encode_invalid_numbers('on') return j.encode({[1/0] = 1})",
    "local j = cjson.new() j.encode_invalid_numbers('null') return j.encode({[0/0 + 1] = 1})",
    "local j = cjson.new() return j.encode_invalid_numbers('maybe')",
    "local j = cjson.new() return j.encode_invalid_numbers(7)",
    "local j = cjson.new() return {j.encode_keep_buffer(false), j.encode({1}), j.encode_keep_buffer('on'), j.encode({2})}",
    "local j = cjson.new() return j.encode_keep_buffer('yes')",
    "local j = cjson.new() return {j.decode_invalid_numbers(false), j.decode_invalid_numbers()}",
    "local j = cjson.new() return j.new ~= nil and j.null == cjson.null",
    "local j = cjson.new() j.x = 1 return j.x",
    // The shared instance keeps its settings from one script to the next.
    "return cjson.encode_max_depth(5)",
    "return cjson.encode_max_depth()",
    "local t = {} for i = 1, 6 do t = {t} end return cjson.encode(t)",
    "return cjson.encode_max_depth(1000)",
    "return cjson:decode()",
    "local x = cjson.encode return x()",
    "return {pcall(cjson.decode)}",
    "return {pcall(cjson.encode, function() end)}",
    "local ok, err = pcall(cjson.decode, '{') return {tostring(ok), err}",
    "return {xpcall(function() return cjson.decode('[') end, function(e) return 'handled: ' .. e end)}",
    "return cjson.decode('[1,2,3')",
    "\n\nreturn cjson.decode('oops')",
];

/// Decoded, then shown exactly: its type, its bits (cmsgpack), and its
/// JSON again (NaN and infinities written out).
const SHOW: &str = "local j = cjson.new() j.encode_invalid_numbers(true) \
    local v = cjson.decode(ARGV[1]) \
    return {type(v), cmsgpack.pack(v), j.encode(v), tostring(v == cjson.null)}";

/// The same with `decode_invalid_numbers` off (strict JSON numbers).
const SHOW_STRICT: &str = "local j = cjson.new() j.encode_invalid_numbers(true) \
    j.decode_invalid_numbers(false) \
    local v = j.decode(ARGV[1]) \
    return {type(v), cmsgpack.pack(v), j.encode(v)}";

const JSON_INPUTS: &[&[u8]] = &[
    b"1",
    b"-1",
    b"0",
    b"-0",
    b"1.5",
    b"-1.5e3",
    b"1E-3",
    b"1e+2",
    b"0.1",
    b"123456789012345678901234567890",
    b"9007199254740993",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"2.4703282292062328e-324",
    b"0x1F",
    b"-0x10",
    b"0x1p3",
    b"0x1.8p-1074",
    b"0x",
    b"+1",
    b"+",
    b"-",
    b"--1",
    b"01",
    b"-01",
    b"1.",
    b".5",
    b"1e",
    b"1e+",
    b"Infinity",
    b"-Infinity",
    b"inf",
    b"-inf",
    b"infinit",
    b"nan",
    b"NaN",
    b"-nan",
    b"nan(123)",
    b"nan(0x7)",
    b"nan(",
    b"true",
    b"false",
    b"null",
    b"nul",
    b"tru",
    b"t",
    b"f",
    b"n",
    b"\"\"",
    b"\"abc\"",
    b"\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
    b"\"\\u0041\\u00e9\\u20ac\\uFFFF\"",
    b"\"\\u0000 nul\"",
    b"\"\\ud83d\\ude00\"",
    b"\"\\uD834\\uDD1E\"",
    b"\"\\ud83d\"",
    b"\"\\ud83d\\u0041\"",
    b"\"\\ude00\"",
    b"\"\\ud83dx\"",
    b"\"\\u12\"",
    b"\"\\u12G4\"",
    b"\"\\x\"",
    b"\"\\",
    b"\"unterminated",
    b"\"raw \x01 control \x7f and \xff bytes\"",
    b"[]",
    b"{}",
    b"[1,2,3]",
    b"[1, \"a\", true, false, null, [], {}]",
    b" \t\r\n[ 1 , 2 ] \n",
    b"{\"a\":1}",
    b"{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":{}}",
    b"{\"dup\":1,\"dup\":2}",
    b"{\"a1\":1,\"b2\":2,\"c3\":3,\"d4\":4,\"e5\":5,\"f6\":6,\"g7\":7,\"h8\":8,\"i9\":9,\"j10\":10,\"k11\":11,\"l12\":12,\"m13\":13,\"n14\":14,\"o15\":15,\"p16\":16,\"q17\":17}",
    b"{\"\":0}",
    b"[1,]",
    b"[,1]",
    b"{\"a\":1,}",
    b"{,}",
    b"{1:2}",
    b"{\"a\" 1}",
    b"{\"a\":}",
    b"{\"a\"",
    b"[1 2]",
    b"{\"a\":1 \"b\":2}",
    b"[",
    b"{",
    b"]",
    b"}",
    b":",
    b",",
    b"",
    b"   ",
    b"1 2",
    b"[1]x",
    b"[1]\0garbage",
    b"\0",
    b"1\0",
    b"a",
    b"'single'",
    b"/* comment */ 1",
    b"[null, 1]",
    b"[1, null]",
];

fn nested(open: &str, close: &str, depth: usize, inner: &str) -> Vec<u8> {
    [open.repeat(depth), inner.to_string(), close.repeat(depth)]
        .concat()
        .into_bytes()
}

#[test]
fn cjson_matches_redis() {
    let mut pair = Pair::start(EngineKind::Memory);
    eval_all(&mut pair, CJSON_ENCODE, "cjson.encode");
    eval_all(&mut pair, CJSON_SETTINGS, "cjson settings");
    eval_inputs(&mut pair, SHOW, JSON_INPUTS, "cjson.decode");
    eval_inputs(&mut pair, SHOW_STRICT, JSON_INPUTS, "cjson.decode strict");
    let round_trip = "return cjson.encode(cjson.decode(ARGV[1]))";
    let deep: Vec<Vec<u8>> = vec![
        nested("[", "]", 1000, "1"),
        nested("[", "]", 1001, "1"),
        nested("{\"k\":", "}", 1000, "1"),
        nested("{\"k\":", "}", 1001, "1"),
        nested("[", "", 5000, ""),
    ];
    let deep: Vec<&[u8]> = deep.iter().map(Vec::as_slice).collect();
    eval_inputs(&mut pair, round_trip, &deep, "cjson.decode depth");
    // Past the default depth, Lua's C stack decides (7999 arrays, 4000
    // objects, in between when mixed).
    let unlimited = "local j = cjson.new() j.decode_max_depth(100000) \
        local ok, v = pcall(j.decode, ARGV[1]) \
        if ok then return 'ok' end return v";
    let deep: Vec<Vec<u8>> = vec![
        nested("[", "]", 7998, "1"),
        nested("[", "]", 7999, "1"),
        nested("{\"a\":", "}", 3999, "1"),
        nested("{\"a\":", "}", 4000, "1"),
        nested("[{\"a\":", "}]", 2666, "1"),
        nested("[{\"a\":", "}]", 2667, "1"),
        nested("[[{\"a\":", "}]]", 2000, "1"),
    ];
    let deep: Vec<&[u8]> = deep.iter().map(Vec::as_slice).collect();
    eval_inputs(&mut pair, unlimited, &deep, "cjson.decode C stack");
    let limited = "local j = cjson.new() j.decode_max_depth(3) return j.encode(j.decode(ARGV[1]))";
    eval_inputs(
        &mut pair,
        limited,
        &[
            b"[[[1]]]",
            b"[[[[1]]]]",
            b"{\"a\":{\"b\":{\"c\":{}}}}",
            b"[[[{}]]]",
        ],
        "decode_max_depth",
    );
    // Large documents round-trip.
    eval(
        &mut pair,
        "local t = {} for i = 1, 20000 do t[i] = {id = i, name = 'n' .. i, tags = {'a', 'b'}} end \
         local s = cjson.encode(t) local back = cjson.decode(s) \
         return {#s, redis.sha1hex(s), #back, back[20000].name, cjson.encode(back) == s}",
        &[],
        "big round trip",
    );
}
