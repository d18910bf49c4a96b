-- wrk_search.lua: SearchFaces for random FaceIds of a seeded collection,
-- unsigned (a loopback server without access keys accepts that).
--   wrk -t2 -c64 -d10s --latency -s bench/wrk_search.lua http://127.0.0.1:PORT/ -- IDS_FILE \
--       [COLLECTION [MAXFACES]]     (MAXFACES "default": no MaxFaces member; else 10)
local ids = {}
local coll = "bench"
local errors = 0
local max_faces = "10"

function init(args)
    for line in io.lines(args[1]) do
        ids[#ids + 1] = line
    end
    if args[2] then coll = args[2] end
    if args[3] then max_faces = args[3] end
    math.randomseed(os.time() + tonumber(tostring(ids):match("0x(%x+)") or "0", 16) % 1000)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
    wrk.headers["X-Amz-Target"] = "RekognitionService.SearchFaces"
end

function request()
    local body = '{"CollectionId":"' .. coll .. '","FaceId":"' .. ids[math.random(#ids)] ..
        '",' .. (max_faces == "default" and '' or '"MaxFaces":' .. max_faces .. ',') ..
        '"FaceMatchThreshold":80}'
    return wrk.format(nil, "/", nil, body)
end

function response(status, headers, body)
    if status ~= 200 then
        errors = errors + 1
        if errors <= 3 then io.stderr:write("HTTP " .. status .. ": " .. body .. "\n") end
    end
end
