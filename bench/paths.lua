-- wrk script: each request takes a random line of PATHS_FILE (one path per line); the report is
-- bench/wrk_report.lua's JSON line (run wrk from the repository root).
dofile("bench/wrk_report.lua")

local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do table.insert(paths, line) end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() * 100 + (id or 0))  -- each wrk thread its own sequence
end

request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
