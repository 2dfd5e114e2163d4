-- Argo CD health check for Bellwether's Rollout (bellwether.dev/v1alpha1). Argo CD runs it with
-- gopher-lua (Lua 5.1) and the Rollout as `obj`; it returns Healthy, Progressing, Suspended (a
-- canary paused for a person) or Degraded, with the Rollout's own message.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Bellwether to report the rollout's status"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for Bellwether to act on generation " .. tostring(generation)
  return hs
end
hs.message = status.message or ""
local function condition(kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end
local invalid = condition("InvalidSpec")
if invalid ~= nil and invalid.status == "True" then
  hs.status = "Degraded"
  hs.message = invalid.message or hs.message
  return hs
end
-- Pauses that wait for a person; a pause step with a duration or scale to zero waits for time or
-- for an autoscaler, and is progress.
local for_a_person = {
  PauseStep = true, UserPause = true, SpecPaused = true, InconclusiveAnalysis = true, AnalysisFailed = true,
}
if status.phase == "Healthy" then
  local ready = condition("Ready")
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
  else
    hs.status = "Progressing"
  end
elseif status.phase == "Progressing" then
  hs.status = "Progressing"
elseif status.phase == "Paused" then
  hs.status = "Progressing"
  for _, pause in ipairs(status.pauseConditions or {}) do
    if for_a_person[pause.reason] then
      hs.status = "Suspended"
    end
  end
elseif status.phase == "Degraded" then
  hs.status = "Degraded"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(status.phase) .. ": is this Bellwether newer than the health check?"
end
return hs
