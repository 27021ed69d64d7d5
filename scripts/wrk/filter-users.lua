-- GET /Users?filter=userName eq "seed-N" over the users the script seeded.
local n = tonumber(os.getenv("SEEDED") or "10000")

function init(args)
  math.randomseed(os.time() + (wrk.thread and 1 or 0))
  if os.getenv("SCIM_TOKEN") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("SCIM_TOKEN")
  end
end

function request()
  local i = math.random(1, n)
  return wrk.format("GET", "/Users?filter=userName%20eq%20%22seed-" .. i .. "%22")
end
