"""Request records: the JSON-lines sinks written off the event loop (:mod:`.sinks`), and the two stages that
produce records, usage tracking (:mod:`.usage`) and payload logging (:mod:`.payload_log`)."""
