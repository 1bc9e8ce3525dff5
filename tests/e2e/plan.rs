// Tests for `migrate plan`.
