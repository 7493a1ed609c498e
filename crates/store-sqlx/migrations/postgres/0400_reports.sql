-- Managers' and headquarters' reads: the overdue tasks of a dealer, oldest first, are one
-- range of `tasks_dealer_due`; the summary per dealer is an index-only scan of it; the overdue
-- tasks of every dealer are one range of `tasks_due`. (The pool per role and the tasks each
-- person holds already have their covering indexes: `task_candidates_inbox`, `tasks_assignee`.)
CREATE INDEX tasks_dealer_due ON tasks (dealer, due_key, id);
CREATE INDEX tasks_due ON tasks (due_key, id);

-- The KPIs read a dealer's instances alive in a period.
CREATE INDEX instances_dealer_started ON instances (dealer, started_at);
