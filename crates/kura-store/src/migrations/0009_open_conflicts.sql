-- Kura 0009: the open conflicts are found without reading the settled ones (the window's header
-- counts them every few seconds, and a long-lived site keeps every settled conflict).
CREATE INDEX conflicts_open ON conflicts(resolved_by);
