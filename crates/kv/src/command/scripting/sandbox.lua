-- Runs once in each new interpreter (see vm.rs), with the standard
-- libraries open and `host` holding the functions written in Rust. It builds
-- Redis's script environment: the `redis` table, the pcall that lets a kill
-- through, the error handler that records where an error happened, and
-- read-only globals (Redis 7 makes every global table read-only).
local host, mode = ...
local G, ipairs = _G, ipairs
local rawset, rawget, setmetatable, error, type, tostring, select, unpack =
  rawset, rawget, setmetatable, error, type, tostring, select, unpack
local raw_pcall, raw_xpcall, raw_loadstring = pcall, xpcall, loadstring
local where = host.where

local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end

local protected = setmetatable({}, { __mode = 'k' })

-- A read-only view of `t`: reads go through, writes fail as Redis's do.
local function protect(t)
  local view = setmetatable({}, {
    __index = t,
    __newindex = readonly_error,
    __metatable = false,
  })
  protected[view] = true
  return view
end

local function pack(...)
  return { n = select('#', ...), ... }
end

-- redis.* -----------------------------------------------------------------

local redis = {}
local run = host.run -- set for the duration of one script by the host

local function command(raise, ...)
  local impl = rawget(run, 'impl')
  if impl == nil then
    error({ err = 'ERR redis.call/pcall can only be called inside a script invocation' })
  end
  local reply, failed = impl(...)
  if failed and raise then
    error(reply)
  end
  return reply
end

redis.call = host.call
local take_pending = host.take_pending
function redis.pcall(...) return command(false, ...) end

local function error_table(text)
  -- Redis's luaPushErrorBuff: "-CODE msg" keeps CODE, plain text gets ERR.
  local code, msg = 'ERR', text
  if text:sub(1, 1) == '-' then
    local space = text:find(' ', 1, true)
    if space then
      code, msg = text:sub(2, space - 1), text:sub(space + 1)
    else
      msg = text:sub(2)
    end
  end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return { err = code .. ' ' .. msg }
end

function redis.error_reply(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  if text:sub(1, 1) ~= '-' then
    text = '-' .. text
  end
  return error_table(text)
end

function redis.status_reply(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  return { ok = text }
end

function redis.sha1hex(...)
  if select('#', ...) ~= 1 then
    error(error_table('wrong number of arguments'))
  end
  return host.sha1hex((...))
end

function redis.log(...)
  local n = select('#', ...)
  if n < 2 then
    error(error_table('redis.log() requires two arguments or more.'))
  end
  local level = ...
  if type(level) ~= 'number' and not (type(level) == 'string' and tonumber(level)) then
    error(error_table('First argument must be a number (log level).'))
  end
  level = math.floor(tonumber(level))
  if level < 0 or level > 3 then
    error(error_table('Invalid debug level.'))
  end
  local parts = {}
  for i = 2, n do
    local v = select(i, ...)
    if type(v) == 'string' or type(v) == 'number' then
      parts[#parts + 1] = tostring(v)
    end
  end
  host.log(level, table.concat(parts, ' '))
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = host.version, host.version_num

local function in_script(name)
  if rawget(run, 'impl') == nil then
    error(error_table(name .. ' can only be called inside a script invocation'))
  end
end

function redis.setresp(...)
  in_script('redis.setresp')
  if select('#', ...) ~= 1 then
    error(error_table('redis.setresp() requires one argument.'))
  end
  local resp = tonumber((...))
  if resp ~= 2 and resp ~= 3 then
    error(error_table('RESP version must be 2 or 3.'))
  end
  rawget(run, 'setresp')(resp)
end

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
function redis.set_repl(...)
  in_script('redis.set_repl')
  if select('#', ...) ~= 1 then
    error(error_table('redis.set_repl() requires two arguments.'))
  end
  local flags = tonumber((...)) or 0
  if flags < 0 or flags > 3 or flags ~= math.floor(flags) then
    error(error_table('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'))
  end
end

function redis.replicate_commands() return true end
function redis.breakpoint() return false end
function redis.debug() end

function redis.acl_check_cmd(...)
  in_script('redis.acl_check_cmd')
  if select('#', ...) == 0 then
    error(error_table('Please specify at least one argument for this redis lib call'))
  end
  if not host.known_command((...)) then
    error(error_table('Invalid command passed to redis.acl_check_cmd()'))
  end
  return true
end

-- math.random with Redis's own generator (same sequence on every platform).
local next_random, seed_random = host.random, host.randomseed
local floor = math.floor
local function int_arg(i, v)
  local n = tonumber(v)
  if n == nil then
    local got = v == nil and 'no value' or type(v)
    error("bad argument #" .. i .. " to 'random' (number expected, got " .. got .. ")", 3)
  end
  return n >= 0 and floor(n) or -floor(-n)
end
function math.random(...)
  local n = select('#', ...)
  local r = next_random()
  if n == 0 then
    return r
  elseif n == 1 then
    local u = int_arg(1, (...))
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  elseif n == 2 then
    local l, u = int_arg(1, (...)), int_arg(2, (select(2, ...)))
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
function math.randomseed(seed)
  seed_random(int_arg(1, seed))
end

-- A kill must not be swallowed by pcall; Redis 7's pcall also turns the
-- error tables of redis.call into their message. Native functions (redis.call,
-- the libraries) raise mlua's userdata and park the real error value, which
-- pcall and xpcall's handler pass on instead.
local killed = host.killed
function pcall(f, ...)
  local result = pack(raw_pcall(f, ...))
  if not result[1] then
    if killed() then
      error(result[2], 0)
    end
    local err = result[2]
    if type(err) == 'userdata' then
      err = take_pending() or err
      result[2] = err
    end
    if type(err) == 'table' and type(rawget(err, 'err')) == 'string' then
      return false, err.err
    end
  end
  return unpack(result, 1, result.n)
end

function xpcall(f, handler)
  local result = pack(raw_xpcall(f, function(e)
    if killed() then
      return e
    end
    if type(e) == 'userdata' then
      e = take_pending() or e
    end
    return handler(e)
  end))
  if not result[1] and killed() then
    error(result[2], 0)
  end
  return unpack(result, 1, result.n)
end

-- Source code only: a binary chunk can crash the interpreter.
function loadstring(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'binary chunks are not allowed'
  end
  return raw_loadstring(s, name)
end

function load(reader, name)
  if type(reader) ~= 'function' then
    return raw_loadstring(reader, name)
  end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then break end
    parts[#parts + 1] = piece
  end
  return loadstring(table.concat(parts), name)
end

_G.rawset = function(t, k, v)
  if protected[t] then
    error('Attempt to modify a readonly table', 2)
  end
  return rawset(t, k, v)
end

-- Libraries written in Rust.
cjson = host.cjson
cmsgpack = host.cmsgpack
bit = host.bit
struct = host.struct
redis.register_function = nil

-- The error handler (Redis's __redis__err__handler): where the error was
-- raised, skipping C functions and this file's wrappers.
local function handler(err)
  local source, line = where()
  if type(err) == 'userdata' then
    err = take_pending() or err
  end
  if type(err) ~= 'table' then
    err = { err = 'ERR ' .. tostring(err) }
  end
  if source then
    err.source = source
    err.line = line
  end
  return err
end

-- Hide what scripts must not reach, then lock the globals.
dofile, loadfile, print = nil, nil, nil
module, require, package, os, io = nil, nil, nil, nil, nil
local real = {}
for k, v in next, G do
  real[k] = v
end
for k in next, real do
  rawset(G, k, nil)
end
for _, name in ipairs({ 'string', 'math', 'table', 'coroutine', 'cjson', 'cmsgpack', 'bit', 'struct' }) do
  if real[name] then
    real[name] = protect(real[name])
  end
end
real.redis = protect(redis)
real._G = G

local function missing(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
setmetatable(real, { __index = missing, __metatable = false })

-- While FUNCTION LOAD runs a library, globals are only `redis` with
-- register_function (Redis's library API).
local library_redis = {
  register_function = function(...)
    local failure = host.register_function(...)
    if failure then
      error(error_table(failure))
    end
  end,
  log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = host.version, REDIS_VERSION_NUM = host.version_num,
}
setmetatable(library_redis, { __index = missing })
local library_api = setmetatable({ redis = protect(library_redis) }, { __index = missing })

local globals_meta = { __index = real, __newindex = readonly_error, __metatable = false }
setmetatable(G, globals_meta)
protected[G] = true

local function run_eval(f)
  return raw_xpcall(f, handler)
end

local function run_function(f, keys, args)
  return raw_xpcall(function() return f(keys, args) end, handler)
end

local function set_args(keys, args)
  real.KEYS, real.ARGV = keys, args
end

local function loading(on)
  globals_meta.__index = on and library_api or real
end

return {
  run_eval = run_eval,
  run_function = run_function,
  set_args = set_args,
  loading = loading,
  handler = handler,
  mode = mode,
}
