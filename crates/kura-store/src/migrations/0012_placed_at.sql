-- Kura 0012: when the registry stored a pulled event at its place. Released migrations are never
-- edited.

-- The registry's received_at of the event at this place, as the pulled page said (NULL for this
-- bench's own events, and for places learnt before this column). A pull names it with the event
-- under its cursor: an event sent again after a registry restore can land where it was before
-- while the places below it changed, and its new placement has another time.
ALTER TABLE event_order ADD COLUMN placed_at INTEGER;
