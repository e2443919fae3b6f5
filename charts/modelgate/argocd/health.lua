-- Argo CD health check for serving.modelgate.io/ServingEndpoint (Lua 5.1, as Argo CD runs it).
-- argocd-cm key: resource.customizations.health.serving.modelgate.io_ServingEndpoint
--
--   Healthy      Ready=True and the operator has observed the current generation
--   Progressing  no status yet, generation not observed yet, Ready=Unknown, or Ready=False while the proxy
--                Deployment is still rolling out (status.state.configUpdate=IN_PROGRESS)
--   Suspended    Ready=False because the proxy is scaled to zero (reason ScaledToZero): nothing serves, on purpose
--   Degraded     Ready=False otherwise, with the condition's reason and message (e.g. SecretNotFound,
--                InvalidConfig, ChildConflict, Invalid (a child the API server rejected), NoAvailableReplicas,
--                ProgressDeadlineExceeded); also Ready=True when the last configuration update failed
--                (configUpdate=UPDATE_FAILED: the previous pods keep serving)
local hs = {}

local function find_condition(status, ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  local text = c.message
  if text == nil or text == "" then
    text = fallback
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. text
  end
  return text
end

local generation = obj.metadata.generation
local status = obj.status

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the modelgate operator to reconcile this endpoint"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  if status.observedGeneration ~= nil then
    hs.message = hs.message .. " (last observed: " .. tostring(status.observedGeneration) .. ")"
  end
  return hs
end

local ready = find_condition(status, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready condition is from generation " .. tostring(ready.observedGeneration)
  return hs
end

local update = nil
if status.state ~= nil then
  update = status.state.configUpdate
end

if ready.status == "True" then
  local proxy = find_condition(status, "ProxyAvailable")
  if update == "UPDATE_FAILED" and proxy ~= nil then
    hs.status = "Degraded"
    hs.message = describe(proxy, "The configuration update failed")
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready.status == "False" then
  if ready.reason == "ScaledToZero" then
    hs.status = "Suspended"
  elseif update == "IN_PROGRESS" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(ready, "Not ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Readiness unknown")
return hs
