-- POST /Users with the bodies listed (one compact JSON user per line) in the file named
-- by $BODIES: the payloads an import sends, as `scimload import --dry-run --emit` writes
-- them. userName and externalId get a prefix of the wrk thread and the round through the
-- list, so every create is distinct.
local bodies = {}
local i = 0
local tid = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  for line in io.lines(os.getenv("BODIES")) do
    bodies[#bodies + 1] = line
  end
  wrk.headers["Content-Type"] = "application/scim+json"
  wrk.headers["Accept"] = "application/scim+json"
end

function request()
  local n = #bodies
  local body = bodies[(i % n) + 1]
  local prefix = "t" .. tid .. "r" .. math.floor(i / n) .. "."
  i = i + 1
  body = body:gsub('"userName":"', '"userName":"' .. prefix, 1)
  body = body:gsub('"externalId":"', '"externalId":"' .. prefix, 1)
  return wrk.format("POST", "/Users", nil, body)
end
