-- GET /Users/{id} over the ids listed (one per line) in the file named by $IDS, in
-- turn. scripts/bench-vs-wrk.sh writes that list as seeded uniform draws from the
-- seeded users, as `scimload bench get` picks its users: the same requests, the same
-- spread over the server's store (a walk in insertion order is kinder to its caches and
-- measured ~15% faster on one server core).
local ids = {}

function init(args)
  for line in io.lines(os.getenv("IDS")) do
    ids[#ids + 1] = line
  end
  if os.getenv("SCIM_TOKEN") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("SCIM_TOKEN")
  end
  wrk.headers["Accept"] = "application/scim+json"
end

local i = 0
function request()
  i = i + 1
  return wrk.format("GET", "/Users/" .. ids[(i % #ids) + 1])
end
