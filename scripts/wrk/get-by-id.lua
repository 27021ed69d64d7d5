-- GET /Users/{id} over the ids listed (one per line) in the file named by $IDS, in
-- turn: the same requests `scimload bench get` sends.
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
