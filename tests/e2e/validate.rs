// Tests for `migrate validate`.
