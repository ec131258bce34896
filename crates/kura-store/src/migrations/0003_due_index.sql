-- Kura 0003: overdue check-outs are found by their due date (only rows that have one are
-- indexed, so check-ins, moves and registrations pay nothing for it).
CREATE INDEX specimens_due ON specimens(due) WHERE due IS NOT NULL;
