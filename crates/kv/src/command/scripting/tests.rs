//! Unit tests of scripting through a socketless client: conversions, error
//! texts, bad input (syntax and runtime errors, endless loops, huge
//! allocations), the cache, functions, kill, and the libraries' own bounds.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::command::local::LocalClient;
use crate::config::Config;
use crate::protocol::Frame;

fn client() -> LocalClient {
    LocalClient::memory(Config::default())
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

fn eval(c: &mut LocalClient, script: &str, keys: &[&str], args: &[&str]) -> Frame {
    let numkeys = keys.len().to_string();
    let mut words: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), numkeys.as_bytes()];
    words.extend(keys.iter().map(|k| k.as_bytes()));
    words.extend(args.iter().map(|a| a.as_bytes()));
    c.run(&words)
}

fn error_of(frame: Frame) -> String {
    match frame {
        Frame::Error(text) => text,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn keys_argv_and_redis_call_run_commands_atomically() {
    let mut c = client();
    let reply = eval(
        &mut c,
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])",
        &["k"],
        &["v"],
    );
    assert_eq!(reply, bulk("v"));
    // Undeclared keys are fine (BullMQ-style scripts rely on it).
    let reply = eval(&mut c, "return redis.call('INCR', 'other')", &[], &[]);
    assert_eq!(reply, Frame::Integer(1));
}

#[test]
fn lua_values_convert_to_replies_as_redis_does() {
    let mut c = client();
    assert_eq!(eval(&mut c, "return 3.99", &[], &[]), Frame::Integer(3));
    assert_eq!(eval(&mut c, "return -3.99", &[], &[]), Frame::Integer(-3));
    assert_eq!(eval(&mut c, "return true", &[], &[]), Frame::Integer(1));
    assert_eq!(eval(&mut c, "return false", &[], &[]), Frame::Null);
    assert_eq!(eval(&mut c, "return nil", &[], &[]), Frame::Null);
    assert_eq!(
        eval(&mut c, "return {1, 'a', {ok='fine'}, nil, 4}", &[], &[]),
        Frame::Array(vec![
            Frame::Integer(1),
            bulk("a"),
            Frame::SimpleOwned("fine".into())
        ])
    );
    assert_eq!(
        eval(&mut c, "return {err='MY bad'}", &[], &[]),
        Frame::error("MY bad")
    );
    assert_eq!(
        eval(&mut c, "return redis.error_reply('oops')", &[], &[]),
        Frame::error("ERR oops")
    );
    assert_eq!(
        eval(&mut c, "return redis.status_reply('FINE')", &[], &[]),
        Frame::SimpleOwned("FINE".into())
    );
    // Replies to Lua: null bulk is false, status is {ok=...}.
    assert_eq!(
        eval(
            &mut c,
            "return {redis.call('GET', 'nope') == false, redis.call('SET', 'x', 1).ok}",
            &[],
            &[]
        ),
        Frame::Array(vec![Frame::Integer(1), bulk("OK")])
    );
    // Numbers become arguments with %.17g.
    assert_eq!(
        eval(
            &mut c,
            "redis.call('SET', 'f', 0.1); return redis.call('GET', 'f')",
            &[],
            &[]
        ),
        bulk("0.10000000000000001")
    );
}

#[test]
fn resp3_scripts_see_and_return_resp3_types() {
    let mut c = client();
    let reply = eval(
        &mut c,
        "redis.setresp(3); return {redis.call('GET', 'nope') == nil, {double=1.5}, {map={a=1}}}",
        &[],
        &[],
    );
    assert_eq!(
        reply,
        Frame::Array(vec![
            Frame::Boolean(true),
            Frame::Double(1.5),
            Frame::Map(vec![(bulk("a"), Frame::Integer(1))])
        ])
    );
}

#[test]
fn errors_read_as_redis_7_writes_them() {
    let mut c = client();
    assert_eq!(
        error_of(eval(&mut c, "return 1 +", &[], &[])),
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'"
    );
    let err = error_of(eval(&mut c, "error('boom')", &[], &[]));
    assert!(err.starts_with("ERR user_script:1: boom script: "), "{err}");
    assert!(err.ends_with(", on @user_script:1."), "{err}");
    let err = error_of(eval(&mut c, "return redis.call('nope')", &[], &[]));
    assert!(
        err.starts_with("ERR Unknown Redis command called from script script: "),
        "{err}"
    );
    let err = error_of(eval(&mut c, "\n\nreturn y", &[], &[]));
    assert!(
        err.starts_with(
            "ERR user_script:3: Script attempted to access nonexistent global variable 'y'"
        ),
        "{err}"
    );
    let err = error_of(eval(&mut c, "x = 1", &[], &[]));
    assert!(
        err.starts_with("ERR user_script:1: Attempt to modify a readonly table"),
        "{err}"
    );
    let err = error_of(eval(&mut c, "string.rep = nil", &[], &[]));
    assert!(err.contains("Attempt to modify a readonly table"), "{err}");
    assert_eq!(
        eval(&mut c, "return redis.pcall('incr', 'x1', 'x2')", &[], &[]),
        Frame::error("ERR Wrong number of args calling Redis command from script")
    );
    assert_eq!(
        eval(
            &mut c,
            "return redis.pcall('eval', 'return 1', '0')",
            &[],
            &[]
        ),
        Frame::error("ERR This Redis command is not allowed from script")
    );
    assert_eq!(
        c.run(&[b"EVAL", b"return 1", b"-1"]),
        Frame::error("ERR Number of keys can't be negative")
    );
    assert_eq!(
        c.run(&[b"EVAL", b"return 1", b"2", b"a"]),
        Frame::error("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        c.run(&[b"EVALSHA", b"abc", b"0"]),
        Frame::error("NOSCRIPT No matching script. Please use EVAL.")
    );
    // A bytecode chunk is refused (it could crash the interpreter).
    let err = eval(
        &mut c,
        "return loadstring(string.dump(function() end))",
        &[],
        &[],
    );
    assert_eq!(err, Frame::Null);
}

#[test]
fn the_cache_holds_scripts_by_sha1_until_flushed() {
    let mut c = client();
    let sha = match c.run(&[b"SCRIPT", b"LOAD", b"return ARGV[1]"]) {
        Frame::Bulk(sha) => sha,
        other => panic!("{other:?}"),
    };
    assert_eq!(&sha[..], b"098e0f0d1448c0a81dafe820f66d460eb09263da");
    assert_eq!(c.run(&[b"EVALSHA", &sha, b"0", b"hi"]), bulk("hi"));
    assert_eq!(
        c.run(&[b"EVALSHA", &sha.to_ascii_uppercase(), b"0", b"up"]),
        bulk("up")
    );
    assert_eq!(
        c.run(&[b"SCRIPT", b"EXISTS", &sha, b"0000"]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)])
    );
    assert_eq!(c.run(&[b"SCRIPT", b"FLUSH"]), Frame::OK);
    assert!(c.run(&[b"EVALSHA", &sha, b"0"]).is_error());
}

#[test]
fn read_only_scripts_refuse_writes() {
    let mut c = client();
    let err = error_of(c.run(&[b"EVAL_RO", b"return redis.call('SET', 'a', 1)", b"0"]));
    assert!(
        err.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{err}"
    );
    assert_eq!(
        c.run(&[
            b"EVAL",
            b"#!lua flags=no-writes\nreturn redis.call('GET', 'a')",
            b"0"
        ]),
        Frame::Null
    );
    assert_eq!(
        c.run(&[b"EVAL_RO", b"#!lua\nreturn 1", b"0"]),
        Frame::error("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(
        c.run(&[b"EVAL", b"#!python\nreturn 1", b"0"]),
        Frame::error("ERR Unexpected engine in script shebang: #!python")
    );
}

#[test]
fn a_script_error_keeps_the_writes_before_it() {
    let mut c = client();
    let err = eval(&mut c, "redis.call('SET', 'a', 1); error('late')", &[], &[]);
    assert!(err.is_error());
    assert_eq!(c.run(&[b"GET", b"a"]), bulk("1"));
}

#[test]
fn huge_allocations_fail_the_script_not_the_server() {
    let mut c = client();
    let err = error_of(eval(
        &mut c,
        "local s = string.rep('x', 1024 * 1024 * 1024); return #s",
        &[],
        &[],
    ));
    assert!(err.contains("not enough memory"), "{err}");
    let err = error_of(eval(
        &mut c,
        "local t = {} for i = 1, 1e9 do t[i] = i end return #t",
        &[],
        &[],
    ));
    assert!(err.contains("not enough memory"), "{err}");
    assert_eq!(eval(&mut c, "return 7", &[], &[]), Frame::Integer(7));
}

#[test]
fn an_endless_loop_is_killed_and_the_server_goes_on() {
    let mut c = client();
    let mut killer = c.connect();
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        // Wait until the script is running, then kill it.
        loop {
            std::thread::sleep(Duration::from_millis(20));
            match killer.run(&[b"SCRIPT", b"KILL"]) {
                Frame::Simple("OK") => return,
                Frame::Error(e) if e.starts_with("NOTBUSY") => continue,
                other => panic!("{other:?}"),
            }
        }
    });
    let err = error_of(eval(
        &mut c,
        "while true do pcall(function() while true do end end) end",
        &[],
        &[],
    ));
    handle.join().unwrap();
    assert!(
        err.starts_with("ERR Script killed by user with SCRIPT KILL... script: "),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(eval(&mut c, "return 1", &[], &[]), Frame::Integer(1));
}

#[test]
fn functions_load_call_list_and_restore() {
    let mut c = client();
    let code = "#!lua name=mylib\nredis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)\nredis.register_function{function_name='ro', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";
    assert_eq!(
        c.run(&[b"FUNCTION", b"LOAD", code.as_bytes()]),
        bulk("mylib")
    );
    assert_eq!(
        c.run(&[b"FUNCTION", b"LOAD", code.as_bytes()]),
        Frame::error("ERR Library 'mylib' already exists")
    );
    assert_eq!(
        c.run(&[b"FUNCTION", b"LOAD", b"REPLACE", code.as_bytes()]),
        bulk("mylib")
    );
    assert_eq!(c.run(&[b"FCALL", b"hello", b"0", b"you"]), bulk("hi you"));
    assert_eq!(c.run(&[b"FCALL_RO", b"ro", b"1", b"k"]), Frame::Null);
    assert_eq!(
        c.run(&[b"FCALL_RO", b"hello", b"0", b"x"]),
        Frame::error("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(
        c.run(&[b"FCALL", b"nope", b"0"]),
        Frame::error("ERR Function not found")
    );
    let dump = match c.run(&[b"FUNCTION", b"DUMP"]) {
        Frame::Bulk(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(c.run(&[b"FUNCTION", b"FLUSH"]), Frame::OK);
    assert_eq!(
        c.run(&[b"FCALL", b"hello", b"0", b"x"]),
        Frame::error("ERR Function not found")
    );
    assert_eq!(c.run(&[b"FUNCTION", b"RESTORE", &dump]), Frame::OK);
    assert_eq!(c.run(&[b"FCALL", b"hello", b"0", b"back"]), bulk("hi back"));
    assert!(matches!(c.run(&[b"FUNCTION", b"LIST"]), Frame::Array(libs) if libs.len() == 1));
    assert_eq!(
        c.run(&[b"FUNCTION", b"LOAD", b"#!lua name=bad\nlocal x = 1"]),
        Frame::error("ERR No functions registered")
    );
    assert_eq!(
        c.run(&[b"FUNCTION", b"LOAD", b"return 1"]),
        Frame::error("ERR Missing library metadata")
    );
    let err = error_of(c.run(&[b"FUNCTION", b"LOAD", b"#!lua name=slow\nwhile true do end"]));
    assert!(err.contains("FUNCTION LOAD timeout"), "{err}");
    assert_eq!(c.run(&[b"FUNCTION", b"DELETE", b"mylib"]), Frame::OK);
    assert_eq!(
        c.run(&[b"FUNCTION", b"DELETE", b"mylib"]),
        Frame::error("ERR Library not found")
    );
}

#[test]
fn bit_library_matches_luabitop() {
    let mut c = client();
    let reply = eval(
        &mut c,
        "return {bit.band(0xff, 0x0f), bit.bor(1, 2, 4), bit.bxor(5, 1), bit.lshift(1, 31), bit.rshift(-1, 28), bit.arshift(-16, 2), bit.tohex(255), bit.tohex(-1, -4), bit.tobit(2^32 + 3)}",
        &[],
        &[],
    );
    assert_eq!(
        reply,
        Frame::Array(vec![
            Frame::Integer(15),
            Frame::Integer(7),
            Frame::Integer(4),
            Frame::Integer(-2147483648),
            Frame::Integer(15),
            Frame::Integer(-4),
            bulk("000000ff"),
            bulk("FFFF"),
            Frame::Integer(3),
        ])
    );
}

// The libraries' own bounds, which the differential tests cannot check
// (Redis has no interpreter memory limit, and mlua's reference stack is
// ours alone): output past the memory budget and too many results fail the
// script, and the interpreter goes on working.

#[test]
fn output_past_the_memory_budget_fails_the_script_not_the_server() {
    let mut c = client();
    let big = "local s = string.rep('x', 100 * 1024 * 1024) ";
    for body in [
        "return cjson.encode({s, s, s})",
        "return cjson.encode({a = s, b = s, c = s})",
        "local t = {s, s} return cmsgpack.pack({t, t})",
        "return cmsgpack.pack(s, s, s)",
        "return struct.pack('c0c0c0', s, s, s)",
    ] {
        let err = error_of(eval(&mut c, &format!("{big}{body}"), &[], &[]));
        assert!(err.contains("not enough memory"), "{body}: {err}");
    }
    assert_eq!(
        eval(&mut c, "return cjson.encode({1, 'two'})", &[], &[]),
        bulk("[1,\"two\"]")
    );
}

#[test]
fn many_strings_as_results_are_refused_before_mlua_runs_out_of_references() {
    let mut c = client();
    for script in [
        "return select('#', cmsgpack.unpack(string.rep('\\161a', 7500)))",
        "return select('#', struct.unpack(string.rep('c1', 7500), string.rep('a', 7500)))",
    ] {
        let err = error_of(eval(&mut c, script, &[], &[]));
        assert!(err.contains("stack overflow (too many"), "{script}: {err}");
    }
    // Numbers hold no references: up to what Lua's stack takes.
    assert_eq!(
        eval(
            &mut c,
            "return select('#', cmsgpack.unpack(string.rep('\\1', 7500)))",
            &[],
            &[]
        ),
        Frame::Integer(7500)
    );
}
