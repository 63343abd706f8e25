-- Argo CD health check for serving.memoserve.dev/InferenceService, the memoserve operator's
-- resource (its docs/install.md says how to install this file). The operator writes
-- metav1.Conditions: one per part (ServingReady, ModelReady, CacheReady, IngressReady,
-- AutoscalingReady, and CanaryReady with spec.canary) and Ready, their summary:
-- operator/memoserve_operator/status/conditions.py, observe.py and canary.py in the memoserve
-- repository say which reasons each part can have. A canary is one more part: Progressing while
-- its pods load, Degraded when they fail (a crash loop, an image that cannot be pulled), though
-- the stable version serves meanwhile (its message says so).
--
--   Healthy      the operator has seen the current spec (status.observedGeneration, and the
--                Ready condition's observedGeneration when set, is metadata.generation) and
--                Ready is True. Nothing else can hold it back.
--   Degraded     the current spec was seen, Ready is False and a failure explains it: the Ready
--                reason, or the reason of another condition that is False, names a failure
--                (ends in Failed, Failure, Error or BackOff, or is one of FAILURE_REASONS below).
--                Waiting will not fix it; the message is that condition's.
--   Progressing  everything else: no status yet, a spec the operator has not seen yet, no Ready
--                condition yet, Ready Unknown, or Ready False for a reason waiting can fix.
-- It never fails on a missing or mistyped field. It uses Lua's string library: installed through
-- argocd-cm, it needs resource.customizations.useOpenLibs.serving.memoserve.dev_InferenceService.

local FAILURE_SUFFIXES = {"Failed", "Failure", "Error", "BackOff"}
local FAILURE_REASONS = {
  -- Kubernetes reasons the operator may pass on from the serving pods.
  ErrImagePull = true,
  InvalidImageName = true,
  -- Google API errors that retrying will not fix (gRPC status names).
  PermissionDenied = true, PERMISSION_DENIED = true,
  Unauthenticated = true, UNAUTHENTICATED = true,
  InvalidArgument = true, INVALID_ARGUMENT = true,
  FailedPrecondition = true, FAILED_PRECONDITION = true,
  ResourceExhausted = true, RESOURCE_EXHAUSTED = true,
  QuotaExceeded = true,
  InvalidSpec = true,
  -- memoserve's cache reasons that need a person: the instance needs replacing, belongs to
  -- someone else, or (an existing* source) does not exist.
  CacheRecreateRequired = true,
  CacheNotOwned = true,
  CacheNotFound = true,
  -- Valkey / Redis Cluster: no service connection policy for Private Service Connect;
  -- the pods' Google service account may not AUTH (a missing dbConnectionUser role).
  ServiceConnectionPolicyMissing = true,
  CacheAuthRefused = true,
}

local function text(value)
  if type(value) == "string" then
    return value
  end
  if type(value) == "number" or type(value) == "boolean" then
    return tostring(value)
  end
  return ""
end

local function number(value)
  if type(value) == "number" then
    return value
  end
  if type(value) == "string" then
    return tonumber(value)
  end
  return nil
end

local function is_failure(reason)
  if FAILURE_REASONS[reason] then
    return true
  end
  for _, suffix in ipairs(FAILURE_SUFFIXES) do
    if #reason > #suffix and string.sub(reason, -#suffix) == suffix then
      return true
    end
  end
  return false
end

-- "Type: Reason: message", leaving out the empty parts.
local function describe(condition)
  local parts = {}
  for _, part in ipairs({text(condition.type), text(condition.reason), text(condition.message)}) do
    if part ~= "" then
      table.insert(parts, part)
    end
  end
  return table.concat(parts, ": ")
end

local function assess(resource)
  if type(resource) ~= "table" then
    return {status = "Progressing", message = "Waiting for the InferenceService"}
  end
  local metadata = resource.metadata
  if type(metadata) ~= "table" then
    metadata = {}
  end
  if metadata.deletionTimestamp ~= nil then
    return {status = "Progressing", message = "Deleting"}
  end
  local status = resource.status
  if type(status) ~= "table" then
    return {status = "Progressing", message = "Waiting for the memoserve operator to report status"}
  end

  local generation = number(metadata.generation)
  local observed = number(status.observedGeneration)
  if generation ~= nil and (observed == nil or observed < generation) then
    local seen = "none"
    if observed ~= nil then
      seen = tostring(observed)
    end
    return {
      status = "Progressing",
      message = "Waiting for the memoserve operator to observe generation " .. tostring(generation) ..
        " (observed: " .. seen .. ")",
    }
  end

  local conditions = {}
  if type(status.conditions) == "table" then
    for _, condition in ipairs(status.conditions) do
      if type(condition) == "table" then
        table.insert(conditions, condition)
      end
    end
  end
  local ready = nil
  for _, condition in ipairs(conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
  if ready == nil then
    return {status = "Progressing", message = "Waiting for the Ready condition"}
  end
  local ready_generation = number(ready.observedGeneration)
  if generation ~= nil and ready_generation ~= nil and ready_generation < generation then
    return {
      status = "Progressing",
      message = "Waiting for the Ready condition of generation " .. tostring(generation) ..
        " (it describes generation " .. tostring(ready_generation) .. ")",
    }
  end

  local ready_status = text(ready.status)
  if ready_status == "True" then
    local message = text(ready.message)
    if message == "" then
      message = "Ready"
    end
    return {status = "Healthy", message = message}
  end

  if ready_status == "False" then
    -- A failing part says more than the summary, so look there first.
    for _, condition in ipairs(conditions) do
      if condition ~= ready and text(condition.status) == "False" and is_failure(text(condition.reason)) then
        return {status = "Degraded", message = describe(condition)}
      end
    end
    if is_failure(text(ready.reason)) then
      return {status = "Degraded", message = describe(ready)}
    end
  end

  -- Ready Unknown, or False for a reason waiting can fix: say what is still pending, each part
  -- once (Ready's message usually quotes the first part that is not ready).
  local message = describe(ready)
  for _, condition in ipairs(conditions) do
    local pending = text(condition.message)
    if condition ~= ready and text(condition.status) ~= "True" and pending ~= ""
        and string.find(message, pending, 1, true) == nil then
      message = message .. "; " .. describe(condition)
    end
  end
  return {status = "Progressing", message = message}
end

return assess(obj)
