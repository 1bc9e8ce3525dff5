//! Field sets in the FieldsV1 form used by `metadata.managedFields`.
