//! Differential tests of scripting against a real `redis-server` (see
//! `common/diff.rs`): script replies, type conversions both ways, and
//! error texts compared byte for byte, in RESP2 and RESP3, on both engines.

use crate::common;

use common::diff::{Pair, cmd};

/// Scripts whose replies must equal Redis 7's exactly.
const SCRIPTS: &[&str] = &[
    "return 1",
    "return 3.99",
    "return -3.99",
    "return 'str'",
    "return true",
    "return false",
    "return nil",
    "return {1, 2, 3.7, 'x', {ok='fine'}, {err='bad'}, nil, 4}",
    "return {err='MY boom'}",
    "return {ok='STATUS'}",
    "return redis.error_reply('oops')",
    "return redis.error_reply('-CODE oops')",
    "return redis.status_reply('FINE')",
    "return redis.sha1hex('')",
    "return redis.sha1hex('abc')",
    "return {KEYS[1], ARGV[1], #KEYS, #ARGV}",
    "return redis.call('SET', KEYS[1], ARGV[1])",
    "return redis.call('GET', KEYS[1])",
    "return redis.call('GET', 'missing') == false",
    "return redis.call('INCR', 'counter')",
    "return redis.pcall('INCR', KEYS[1])",
    "return redis.call('INCR', KEYS[1])",
    "return redis.call('nope')",
    "return redis.pcall('nope')",
    "return redis.call('get')",
    "return redis.pcall('get')",
    "return redis.call()",
    "return redis.call('SET', 'a', {})",
    "return redis.call('SET', 'f', 0.1), redis.call('GET', 'f')",
    "redis.call('SET', 'f', 0.1) return redis.call('GET', 'f')",
    "redis.call('SET', 'f', 1e20) return redis.call('GET', 'f')",
    "return redis.call('EVAL', 'return 1', 0)",
    "return redis.pcall('MULTI')",
    "return redis.call('DEL', KEYS[1], 'a', 'f')",
    "return {pcall(redis.call, 'nope')}",
    "return {pcall(error, 'x')}",
    "return 1 +",
    "error('boom')",
    "\n\nerror('line three')",
    "error({err='TABLE err'})",
    "x = 1",
    "return undefined_global",
    "string.rep = nil",
    "return string.format('%d %s %.2f', 7, 'x', 1.5)",
    "return tostring(1e15), tostring(0.1)",
    "return {tostring(1e15), tostring(0.1), tostring(2^53)}",
    "return math.floor(7.9)",
    "return type(bit), type(redis)",
    "return bit.band(0xff, 0x0f) + bit.lshift(1, 4)",
    "return bit.tohex(65535)",
    "redis.setresp(3) return redis.call('GET', 'missing') == nil",
    "redis.setresp(3) return {double=1.5}",
    "redis.setresp(3) return true",
    "redis.setresp(3) return false",
    "redis.setresp(4)",
    "redis.setresp() return 1",
    "redis.log(redis.LOG_WARNING, 'from a script') return 1",
    "redis.log(99, 'x') return 1",
    "return {redis.REPL_ALL, redis.LOG_NOTICE}",
    "#!lua flags=no-writes\nreturn redis.call('GET', 'a')",
    "#!lua flags=no-writes\nreturn redis.call('SET', 'a', 1)",
    "#!lua flags=bogus\nreturn 1",
    "#!python\nreturn 1",
    "#!lua name=x\nreturn 1",
    "local t = {} for i = 1, 5 do t[i] = i * i end return t",
    "return table.concat({'a', 'b'}, ',')",
    "return #ARGV",
    // The globals a script sees, exactly.
    "local t = {} for k in pairs(_G) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) return t",
    "local n = 0 for k in pairs(string) do n = n + 1 end return {n, next(_G) ~= nil}",
    "return {type(rawget(_G, 'redis')), type(rawget(string, 'len')), rawget({7}, 1)}",
    "local it = pairs(nil) return it",
    "local k = next() return k",
    "local v = rawget(nil, 1) return v",
    "return type(newproxy)",
    "return type(gcinfo), type(loadstring), type(load), type(module), type(require)",
    // Many arguments (Redis takes up to `unpack`'s limit, about 8,000; ours
    // up to mlua's callback stack, somewhat fewer, then an error reply).
    "local t = {} for i = 1, 3900 do t[i] = 'k' end return redis.call('DEL', unpack(t))",
    "local t = {} for i = 1, 8000 do t[i] = 'k' end return redis.call('DEL', unpack(t))",
    // Deep nesting: converted without recursion (a recursive walk once
    // exhausted the server's stack at about 900 levels).
    "local t = {} for i = 1, 900 do t = {t} end return t",
    "redis.setresp(3) local t = {} for i = 1, 300 do t = {map={k=t}} end return t",
    "redis.setresp(3) local t = 1 for i = 1, 300 do t = {set={[i]=true}, t} end return t",
    "redis.setresp(3) return {map={a={1, {set={x=true}}}, b={double=2.5}}}",
];

fn run_all(pair: &mut Pair, context: &str) {
    for script in SCRIPTS {
        pair.check(
            &[b"EVAL", script.as_bytes(), b"1", b"key", b"value"],
            context,
        );
    }
}

#[test]
fn script_replies_and_errors_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        run_all(&mut pair, "RESP2");
        // HELLO's own reply names the server version and client id: not compared.
        pair.both(&[b"HELLO", b"3"]);
        run_all(&mut pair, "RESP3");
    }
}

#[test]
fn cache_commands_match_redis() {
    let mut pair = Pair::start(kv::config::EngineKind::Memory);
    let commands = [
        cmd(&["SCRIPT", "LOAD", "return ARGV[1]"]),
        cmd(&[
            "EVALSHA",
            "098e0f0d1448c0a81dafe820f66d460eb09263da",
            "0",
            "hi",
        ]),
        cmd(&[
            "EVALSHA",
            "098E0F0D1448C0A81DAFE820F66D460EB09263DA",
            "0",
            "up",
        ]),
        cmd(&[
            "EVALSHA_RO",
            "098e0f0d1448c0a81dafe820f66d460eb09263da",
            "0",
            "ro",
        ]),
        cmd(&[
            "SCRIPT",
            "EXISTS",
            "098e0f0d1448c0a81dafe820f66d460eb09263da",
            "ffff",
        ]),
        cmd(&["EVALSHA", "abc", "0"]),
        cmd(&["EVALSHA", "0123456789012345678901234567890123456789", "0"]),
        cmd(&["EVAL", "return 1", "-1"]),
        cmd(&["EVAL", "return 1", "2", "a"]),
        cmd(&["EVAL", "return 1", "x"]),
        cmd(&["EVAL_RO", "return redis.call('SET', 'a', 1)", "0"]),
        cmd(&["EVAL_RO", "return redis.call('GET', 'a')", "0"]),
        cmd(&["EVAL_RO", "#!lua\nreturn 1", "0"]),
        cmd(&["SCRIPT", "KILL"]),
        cmd(&["SCRIPT", "FLUSH", "BOGUS"]),
        cmd(&["SCRIPT", "FLUSH"]),
        cmd(&[
            "SCRIPT",
            "EXISTS",
            "098e0f0d1448c0a81dafe820f66d460eb09263da",
        ]),
        cmd(&["SCRIPT", "BOGUS"]),
        cmd(&["SCRIPT", "LOAD"]),
        cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('f', function(keys, args) return {keys[1], args[1]} end)",
        ]),
        cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('f', function() return 1 end)",
        ]),
        cmd(&["FCALL", "f", "1", "k", "a"]),
        cmd(&["FCALL", "f", "x"]),
        cmd(&["FCALL", "f", "3", "k"]),
        cmd(&["FCALL", "missing", "0"]),
        cmd(&["FCALL_RO", "f", "0"]),
        cmd(&["FUNCTION", "LIST"]),
        cmd(&["FUNCTION", "LIST", "WITHCODE"]),
        cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "l*"]),
        cmd(&["FUNCTION", "LOAD", "return 1"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=bad-name\nlocal x = 1"]),
        cmd(&["FUNCTION", "LOAD", "#!lua\nlocal x = 1"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=a foo=b\nlocal x = 1"]),
        cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=dup\nredis.register_function('f', function() return 1 end)",
        ]),
        cmd(&["FUNCTION", "DELETE", "lib"]),
        cmd(&["FUNCTION", "DELETE", "lib"]),
        cmd(&["FUNCTION", "KILL"]),
        cmd(&["FUNCTION", "FLUSH"]),
    ];
    pair.run_stream(0, &commands);
}
