"""Zone files: schema, validation with file:line errors, geometry, schedules.

Modules (import the one you need; importing `zones` itself loads nothing heavy):
  schema       the pydantic tree: ZoneFile, Zone, Shop, Schedule, Fixture
  loader       load_zone_file, parse_zone_document, check_zone_file, ZoneFileError
  yaml_source  generic YAML/JSON loading with key positions -> Problem(file, line, key, message)
  checks       named validation rules (per value and across zones)
  schedule     is_active(schedule, when, tz)
  geometry     footprints and exact box-in-polygon areas
  membership   ZoneMembership.evaluate(detections, when) -> {zone id: ZoneCheck}
  render, cli  drawing zones on a snapshot; `curbwatch zones ...`
"""
