-- POST /Users with a distinct userName per request: wrk thread id, then a counter.
local counter = 0
local run = os.getenv("RUN") or tostring(os.time())
local tid = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  wrk.headers["Content-Type"] = "application/scim+json"
  if os.getenv("SCIM_TOKEN") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("SCIM_TOKEN")
  end
end

function request()
  counter = counter + 1
  local name = string.format("wrk-%s-%d-%d", run, tid, counter)
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s","externalId":"%s",' ..
    '"name":{"givenName":"Load","familyName":"Test"},"displayName":"Load Test","active":true,' ..
    '"emails":[{"value":"%s@example.com","type":"work","primary":true}]}', name, name, name)
  return wrk.format("POST", "/Users", nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    errors = (errors or 0) + 1
  end
end
